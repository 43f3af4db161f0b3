// The JSON config files that hold a service's address and password (Orthanc's, Redis's; mode 600): read, parsed
// and checked the same way for both, with errors that name the file and never quote its text.
import * as fs from 'node:fs';
import type { z } from 'zod';

/**
 * A config file that cannot be read, is not JSON or does not fit its schema: a configuration fault whose message
 * names the file and what is wrong, so `cxr serve` logs it as one line without a stack trace.
 */
export class ConfigFileError extends Error {
  readonly code = 'BAD_CONFIG_FILE';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigFileError';
  }
}

/**
 * JSON.parse's complaint without the text it quotes: V8 quotes the start of the file ('Unexpected token 'u',
 * "url: redis://:secret@..." is not valid JSON'), which in a file holding a password would print it.
 */
function jsonProblem(e: unknown): string {
  const message = (e as Error).message;
  return message.replace(/, ".*" is not valid JSON$/s, '').replace(/ in JSON at position/, ' at position');
}

/** `file` read as JSON and checked against `schema`; `whose` names the service in every error ("Orthanc"). */
export function readConfigFile<T>(file: string, whose: string, schema: z.ZodType<T>): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigFileError(`cannot read config file ${file} (for ${whose}): ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigFileError(`${whose} config file ${file} is not JSON: ${jsonProblem(e)}`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    throw new ConfigFileError(
      `${whose} config file ${file}: ` +
        r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; '),
    );
  }
  return r.data;
}

/** Warns when a config file holding a password may be read by others. */
export function warnIfOpen(file: string, holdsPassword: boolean, warn?: (line: string) => void): void {
  if (holdsPassword && (fs.statSync(file).mode & 0o077) !== 0)
    warn?.(`warning: ${file} holds a password and is readable by others (chmod 600 it)`);
}
