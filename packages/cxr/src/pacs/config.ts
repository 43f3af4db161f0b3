// Where the PACS is and how to log in: from the environment (CXR_ORTHANC_URL, _USER, _PASSWORD,
// as scripts/stack.sh writes them) or a JSON config file, never from command-line flags, which
// other users can read in the process list. Both are outside input: validated with zod.
import * as fs from 'node:fs';
import { z } from 'zod';

export interface OrthancConfig {
  url: string;
  user?: string;
  password?: string;
}

const UrlSchema = z
  .string()
  .trim()
  .refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), {
    message: 'must be an http:// or https:// URL',
  })
  .transform((s) => s.replace(/\/+$/, ''));

const FileSchema = z
  .object({
    url: UrlSchema.optional(),
    user: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
  })
  .strict();

export interface ConfigSources {
  /** A JSON file {url, user, password}; its values win over the environment's. */
  configFile?: string;
  /** --url: overrides the URL (not the credentials). */
  url?: string;
  env?: NodeJS.ProcessEnv;
  warn?: (line: string) => void;
}

export function loadOrthancConfig(src: ConfigSources): OrthancConfig {
  const env = src.env ?? process.env;
  let file: z.infer<typeof FileSchema> = {};
  if (src.configFile) {
    let text: string;
    try {
      text = fs.readFileSync(src.configFile, 'utf8');
    } catch (e) {
      throw new Error(`cannot read config file ${src.configFile}: ${(e as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`config file ${src.configFile} is not JSON: ${(e as Error).message}`);
    }
    const r = FileSchema.safeParse(json);
    if (!r.success) {
      throw new Error(
        `config file ${src.configFile}: ` +
          r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; '),
      );
    }
    file = r.data;
    if (file.password && (fs.statSync(src.configFile).mode & 0o077) !== 0) {
      src.warn?.(`warning: ${src.configFile} holds a password and is readable by others (chmod 600 it)`);
    }
  }
  const rawUrl = src.url ?? file.url ?? env.CXR_ORTHANC_URL;
  if (!rawUrl)
    throw new Error(
      'no Orthanc URL: set CXR_ORTHANC_URL (scripts/stack.sh writes it to .stack/env), or give --url or --config',
    );
  const url = UrlSchema.safeParse(rawUrl);
  if (!url.success) throw new Error(`Orthanc URL '${rawUrl}' ${url.error.issues[0].message}`);
  const user = file.user ?? (env.CXR_ORTHANC_USER || undefined);
  const password = file.password ?? (env.CXR_ORTHANC_PASSWORD || undefined);
  if ((user === undefined) !== (password === undefined)) {
    throw new Error('Orthanc credentials need both a user and a password (CXR_ORTHANC_USER and CXR_ORTHANC_PASSWORD)');
  }
  return { url: url.data, user, password };
}
