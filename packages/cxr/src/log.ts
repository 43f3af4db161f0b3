// The one logger of `cxr serve`: the start-up lines, warnings, retention, the decode pool, shutdown
// and Fastify's request log all go through one pino instance, as one JSON object per line on
// stderr (a log collector parses them; stdout stays free for results). On a terminal the lines
// are made readable by pino-pretty when it is installed; it is not a dependency, so a production
// install always writes JSON. Credentials never reach a line: `redact` blanks them wherever a
// caller or Fastify's serializers put them.
import pino, { type DestinationStream, type Logger } from 'pino';
import { z } from 'zod';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const LogLevelSchema = z.enum(LOG_LEVELS);

/**
 * Paths pino replaces with "[redacted]": request headers that carry credentials, and any field a
 * log call might name token, password or apiToken. Patient data is never passed to the logger at
 * all (records, DICOM attributes and file names stay out of log calls), so there is no path for it.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'token',
  'tokens',
  'apiToken',
  'password',
  '*.token',
  '*.tokens',
  '*.apiToken',
  '*.password',
];

/** The level from --log-level, else CXR_LOG_LEVEL, else info; a clear error for anything else. */
export function resolveLogLevel(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): LogLevel {
  const [source, value] = flag !== undefined ? ['--log-level', flag] : ['CXR_LOG_LEVEL', env.CXR_LOG_LEVEL];
  if (value === undefined || value === '') return 'info';
  const parsed = LogLevelSchema.safeParse(value.trim().toLowerCase());
  if (!parsed.success)
    throw new Error(`${source}: expected one of ${LOG_LEVELS.join(', ')}, got '${value.slice(0, 40)}'`);
  return parsed.data;
}

export interface CreateLoggerOptions {
  level?: LogLevel;
  /** Where lines go (default: stderr, written synchronously so nothing is lost at process.exit). */
  destination?: DestinationStream;
}

export function createLogger(opts: CreateLoggerOptions = {}): Logger {
  return pino(
    {
      name: 'cxr',
      level: opts.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // "level":"info" rather than 30: readable in a terminal and in a log search alike.
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? prettyOnTerminal() ?? pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that writes nothing (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** pino-pretty on stderr when stderr is a terminal and pino-pretty is installed; else null (JSON). */
function prettyOnTerminal(): DestinationStream | null {
  if (!process.stderr.isTTY) return null;
  try {
    // An optional module, looked up at run time: not having it is the normal production case.
    const pretty = require('pino-pretty') as (o: { destination: number; sync: boolean }) => DestinationStream;
    return pretty({ destination: 2, sync: true });
  } catch {
    return null;
  }
}
