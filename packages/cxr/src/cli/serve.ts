// `cxr serve`: the HTTP API and the web page (see docs/api.md).
import { Command, InvalidArgumentError, Option } from 'commander';
import { intInRange, numberInRange, OptionError, positiveInt } from './args';
import { checkModelOption } from './model_folder';
import { ModelLoadError } from '../models/load_error';
import { z } from 'zod';
import { createLogger, type Logger, resolveLogLevel } from '../log';
import { ConfigFileError, isOrthancAuthError, loadOrthancConfig, OrthancClient } from '../pacs';
import { modelDirOrDefault } from '../paths';
import { checkRedis, loadRedisUrl, openQueue, queueApi, redactRedisUrl } from '../queue';
import { DEFAULT_DB_WORDS, defaultDbPath } from '../serve/audit';
import { AuditStoreOpenError } from '../serve/audit_store';
import { ApiTokenError, loadTokens, TokenSet } from '../serve/auth';
import { isLoopbackHost } from '../serve/exposure';
import { parseRetention } from '../serve/retention';
import { trustedProxies } from '../serve/trust_proxy';
import type { ServePredictor } from '../serve/predictor_port';
import { loadChildPredictor } from '../serve/predictor_process';
import { closeOnSignals, defaultWebDir, type RunningServer, startServer } from '../serve/server';
import { DEFAULT_DB_WAIT_S, openWaiting } from './serve_audit_wait';
import { checkDbFolder } from './writable';

// Read by the tests of --db-wait from here, where the option is.
export { DEFAULT_DB_WAIT_S };

/**
 * A number option: a number (a default) or the text of one in decimal, as the other commands' options read them
 * (cli/args.ts). z.coerce alone read '' and '  ' as 0: `--port "$PORT"` with PORT unset listened on any free
 * port, `--db-wait ""` did not wait at all; and '0x1f90' as 8080.
 */
const decimal = z
  .union([
    z.number(),
    z
      .string()
      .trim()
      .regex(/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i, 'a number in decimal digits'),
  ])
  .pipe(z.coerce.number());

const Options = z.object({
  host: z.string().min(1, 'an address to listen on (a host name or IP address), not empty'),
  port: decimal.pipe(z.number().int().min(0).max(65535)),
  model: z.string().min(1).optional(),
  db: z.string().min(1).optional(),
  oodPolicy: z.enum(['warn', 'refuse']),
  storeImages: z.boolean(),
  maxUploadMb: decimal.pipe(z.number().positive().max(1024)),
  concurrency: decimal.pipe(z.number().int().min(1).max(64)),
  threads: decimal.pipe(z.number().int().min(1)).optional(),
  quiet: z.boolean().optional(),
  logLevel: z.string().optional(),
  metricsPublic: z.boolean().optional(),
  allowNoToken: z.boolean().optional(),
  allowedHost: z.array(z.string().regex(/^[A-Za-z0-9.:[\]-]{1,253}$/, 'a host name or IP address')).optional(),
  tokensFile: z.string().min(1).optional(),
  trustProxy: z.array(z.string()).optional(),
  redisConfig: z.string().min(1).optional(),
  orthancConfig: z.string().min(1).optional(),
  dbWait: decimal.pipe(
    z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600),
  ),
  jobUploadsMb: decimal.pipe(
    z
      .number()
      .positive()
      .max(1024 * 1024),
  ),
  retainImages: z.string().transform((v, ctx) => {
    try {
      return parseRetention(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  }),
});

/**
 * The number options, read as every other command reads its numbers (cli/args.ts): a refusal names the option,
 * the value and what it takes (`option '--port <port>' argument '99999' is invalid. an integer from 0 to 65535`),
 * where zod's own text ("Too big: expected number to be <=65535 → at port") named neither. `Options` (above) checks
 * them again, and CXR_DB_WAIT, which comes from the environment, is read by dbWaitFromEnv.
 */
const PORT = intInRange(0, 65535);
const MAX_DB_WAIT_S = 7 * 24 * 3600;
const DB_WAIT = (v: string): number => {
  try {
    return intInRange(0, MAX_DB_WAIT_S)(v);
  } catch {
    throw new InvalidArgumentError(`a whole number of seconds from 0 to ${MAX_DB_WAIT_S} (7 days)`);
  }
};
const MAX_UPLOAD_MB = numberInRange(0, 1024, 'low', 'a number of MiB > 0, at most 1024');
const CONCURRENCY = intInRange(1, 64);
const JOB_UPLOADS_MB = numberInRange(0, 1024 * 1024, 'low', `a number of MiB > 0, at most ${1024 * 1024}`);

/** CXR_DB_WAIT, --db-wait's default, read as --db-wait is; a bad one is refused naming the variable. */
function dbWaitFromEnv(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  try {
    return DB_WAIT(v);
  } catch (e) {
    throw new Error(`serve: --db-wait, from CXR_DB_WAIT, must be ${(e as Error).message} (got ${JSON.stringify(v)})`);
  }
}

/**
 * --trust-proxy, repeatable, each value a comma-separated list: every entry checked as it is read, so that a bad
 * one is refused in commander's words, naming the option and the value, before anything starts.
 */
function trustProxyArg(v: string, prev: string[] = []): string[] {
  try {
    return [...prev, ...trustedProxies([v], 'entry')];
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** CXR_TRUST_PROXY, --trust-proxy's default (empty: unset); a bad one is refused naming the variable. */
function trustProxyFromEnv(v: string | undefined): string[] | undefined {
  if (!v) return undefined;
  try {
    return trustedProxies([v], 'entry');
  } catch (e) {
    throw new Error(
      `serve: --trust-proxy, from CXR_TRUST_PROXY, must list proxies' addresses: ${(e as Error).message}`,
    );
  }
}

/** Options' problems that commander lets through (`--host ""`, a bad --retain-images), one per option as typed. */
function optionProblems(error: z.ZodError, raw: Record<string, unknown>): string {
  return error.issues
    .map((i) => {
      const key = String(i.path[0] ?? '');
      const flag = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      // A refusal in our own words (parseRetention's) names the option already.
      return i.message.startsWith(flag) ? i.message : `${flag} ${JSON.stringify(raw[key])}: ${i.message}`;
    })
    .join('; ');
}

async function loadPredictor(
  dir: string,
  o: { oodPolicy: 'warn' | 'refuse'; decodeWorkers: number; threads?: number },
  log: Logger,
): Promise<ServePredictor> {
  // The engine in a child process, its decoding in worker threads of its own: the event loop (health,
  // history, other requests) waits on neither a file nor the network, and a native fault ends only the engine.
  const p = await loadChildPredictor(dir, { ...o, log });
  for (const note of p.notes) log.warn({ model: dir }, `model: ${note}`);
  return p;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve the JSON API (/api/v1) and the web page; every prediction goes to an audit log')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', PORT, 8080)
    .option('--model <dir>', 'model folder (default: CXR_MODEL or the shipped model)')
    .option('--db <file|url>', `audit log: SQLite file or postgres:// URL (default: ${DEFAULT_DB_WORDS})`)
    .option(
      '--db-wait <seconds>',
      'at start, how long to wait for an audit log that does not answer before exiting 1 (default: CXR_DB_WAIT ' +
        `or ${DEFAULT_DB_WAIT_S})`,
      DB_WAIT,
    )
    .addOption(
      new Option('--ood-policy <policy>', 'out-of-distribution inputs: warn (answer with a warning) or refuse (422)')
        .choices(['warn', 'refuse'])
        .default('warn'),
    )
    .option('--no-store-images', 'do not keep thumbnails and heat maps in the audit log')
    .option(
      '--retain-images <duration>',
      'keep stored heat maps and thumbnails this long (e.g. 30d, 12h; 0 = keep none)',
      '30d',
    )
    .option('--max-upload-mb <n>', 'largest accepted upload in MiB', MAX_UPLOAD_MB, 32)
    .option('--concurrency <n>', 'predictions computed at once', CONCURRENCY, 2)
    .option('--threads <n>', 'engine threads', positiveInt)
    .option('--quiet', 'no line per request (start-up, warnings and errors are still logged)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (default: CXR_LOG_LEVEL or info)')
    .option('--metrics-public', 'answer /metrics without the API token (for a Prometheus scraper inside the network)')
    .option('--tokens-file <file>', 'named API tokens, one "name:token" per line (the audit log records the name)')
    .option(
      '--redis-config <file>',
      'job queue: JSON file {"url": "redis://..."} (default: $CXR_REDIS_URL; none: no /jobs)',
    )
    .option(
      '--orthanc-config <file>',
      'Orthanc for jobs naming its instances: JSON {"url", "user", "password"} (mode 600; default: $CXR_ORTHANC_*)',
    )
    .option(
      '--job-uploads-mb <n>',
      'MiB of uploaded films held in Redis for workers, all together',
      JOB_UPLOADS_MB,
      1024,
    )
    .option('--allow-no-token', 'listen on a non-loopback --host without any API token (refused otherwise)')
    .option(
      '--allowed-host <name>',
      'also answer to this Host name (repeatable; localhost and IP addresses always work)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '--trust-proxy <list>',
      "believe X-Forwarded-For from these proxies' addresses or CIDR ranges (comma-separated or repeated; default: " +
        'CXR_TRUST_PROXY or none): the client address it names is the one throttled and logged',
      trustProxyArg,
    )
    .addHelpText(
      'after',
      '\nSet CXR_API_TOKEN (one token) or CXR_API_TOKENS ("name:token,name:token") to require\n' +
        '"Authorization: Bearer <token>" on the API (the page asks for it once). ' +
        'Tokens are never read from the command line.\n' +
        'Logs are JSON lines on stderr (pino); /metrics is in Prometheus text format.',
    )
    .action(async (raw: Record<string, unknown>) => {
      // An empty CXR_DB_WAIT (`${CXR_DB_WAIT:-}` in a compose file) is unset, not 0 (no wait at all).
      const envWait = process.env.CXR_DB_WAIT || undefined;
      const parsed = Options.safeParse({
        ...raw,
        dbWait: raw.dbWait ?? dbWaitFromEnv(envWait) ?? DEFAULT_DB_WAIT_S,
        trustProxy: raw.trustProxy ?? trustProxyFromEnv(process.env.CXR_TRUST_PROXY),
      });
      if (!parsed.success) throw new Error(`serve: ${optionProblems(parsed.error, raw)}`);
      const o = parsed.data;
      const log = createLogger({ level: resolveLogLevel(o.logLevel) });
      // From here on every line, a refusal or a start-up failure included, is one JSON log line.
      try {
        await serve(o, log);
      } catch (e) {
        // An audit log that cannot be opened (a login refused, a log newer than this cxr) is said in its own
        // words, which name it with the password hidden: a configuration fault, not a bug, so no stack trace.
        // A token refused (CXR_API_TOKEN too short, a bad --tokens-file line) likewise: its message says what to do.
        // A Redis or Orthanc config file that cannot be read or is not JSON too: its message names the file.
        // A folder named by an option that is not there or not usable (OptionError) and a model folder that does not
        // load (ModelLoadError) likewise: their messages name the folder and what to do.
        if (
          e instanceof AuditStoreOpenError ||
          e instanceof ApiTokenError ||
          e instanceof ConfigFileError ||
          e instanceof OptionError ||
          e instanceof ModelLoadError
        )
          log.fatal({ code: e.code }, `${e.message}: not starting`);
        else log.fatal({ err: e }, e instanceof Error ? e.message : String(e));
        process.exit(1);
      }
    });
}

async function serve(o: z.infer<typeof Options>, log: Logger): Promise<void> {
  checkModelOption(o.model);
  checkDbFolder(o.db);
  const tokens = loadTokens(process.env, o.tokensFile, (line) => log.warn(line));
  // Decided before the model loads: an exposed server without a token is refused, not warned about.
  if (!isLoopbackHost(o.host) && tokens.length === 0) {
    if (!o.allowNoToken) {
      throw new Error(
        `serve: refusing to listen on ${o.host} without an API token: anyone who can reach the port could use ` +
          'the API and read its history. Set CXR_API_TOKEN or CXR_API_TOKENS, or use --tokens-file; ' +
          'or pass --allow-no-token if that is really wanted.',
      );
    }
    log.warn(
      { host: o.host },
      `listening on ${o.host} with no API token (--allow-no-token): ` +
        'anyone who can reach this port can use the API and read its history',
    );
  }
  const warn = (line: string) => log.warn(line);
  const redisUrl =
    o.redisConfig || process.env.CXR_REDIS_URL ? loadRedisUrl({ configFile: o.redisConfig, warn }) : null;
  // As cxr worker and cxr enqueue read it: the config file (its values first), else the environment.
  const orthancWanted = o.orthancConfig !== undefined || !!process.env.CXR_ORTHANC_URL;
  const orthanc = orthancWanted ? new OrthancClient(loadOrthancConfig({ configFile: o.orthancConfig, warn })) : null;
  let server: RunningServer | undefined;
  closeOnSignals(() => server, log);
  const tokenSet = new TokenSet(tokens);
  if (o.tokensFile) reloadTokensOnHangup(tokenSet, o.tokensFile, log);
  server = await startServer({
    openJobs: redisUrl
      ? (p) =>
          queueApi({
            queue: openQueue(redisUrl, p.model.sha256),
            model: { sha256: p.model.sha256, defaultOperatingPoint: p.model.meta.defaultOperatingPoint },
            orthanc,
            uploadCapBytes: Math.round(o.jobUploadsMb * 1024 * 1024),
            log: (line) => log.warn(line),
          })
      : undefined,
    host: o.host,
    port: o.port,
    dbPath: o.db ?? defaultDbPath(),
    openAudit: (open) => openWaiting(open, log, o.dbWait * 1000),
    loadPredictor: () =>
      loadPredictor(
        modelDirOrDefault(o.model),
        { oodPolicy: o.oodPolicy, decodeWorkers: o.concurrency, threads: o.threads },
        log,
      ),
    tokens: tokenSet,
    allowedHosts: o.allowedHost,
    trustProxy: o.trustProxy,
    storeImages: o.storeImages && o.retainImages > 0,
    retainImagesMs: o.retainImages,
    maxUploadBytes: Math.round(o.maxUploadMb * 1024 * 1024),
    concurrency: o.concurrency,
    webDir: defaultWebDir(),
    requestLog: !o.quiet,
    metricsPublic: o.metricsPublic,
    log,
  });
  // Predictions need no queue, so a Redis that is away does not stop the server; but an integrator starting it
  // should hear at once, not at the first job's 503. Checked after start, so the check never delays it.
  if (redisUrl)
    checkRedis(redisUrl).then(
      () => log.info(`job queue: Redis at ${redactRedisUrl(redisUrl)} answers`),
      (e: unknown) =>
        log.warn(
          `job queue: ${(e as Error).message} The /jobs routes answer 503 QUEUE_UNAVAILABLE until it does; ` +
            'predictions do not need it.',
        ),
    );
  // Orthanc jobs are checked by the workers that run them; the server only checks an instance id's film before
  // queueing it. A wrong login showed only at the first such job (503 with a five-minute Retry-After): said now.
  if (orthanc && redisUrl)
    orthanc.checkConnection().then(
      (about) => log.info(`Orthanc at ${orthanc.config.url} answers (${about.name} ${about.version})`),
      (e: unknown) =>
        log.warn(
          isOrthancAuthError(e)
            ? `Orthanc refused the server's login (${e.message}): Orthanc jobs answer 503 PACS_UNAVAILABLE until ` +
                'CXR_ORTHANC_USER and CXR_ORTHANC_PASSWORD are fixed (or --orthanc-config) and the server restarted'
            : `Orthanc does not answer (${(e as Error).message}): Orthanc jobs answer 503 PACS_UNAVAILABLE ` +
                'until it does',
        ),
    );
}

/**
 * With --tokens-file, SIGHUP reads it again, so that a token can be revoked or added without a restart (a hang-up
 * ended the server at once before; it still does without the file, as a terminal's closing should). A file that
 * cannot be read or is not valid leaves the tokens in use as they were.
 */
function reloadTokensOnHangup(tokens: TokenSet, file: string, log: Logger): void {
  process.on('SIGHUP', () => {
    try {
      const next = loadTokens({}, file, (line) => log.warn(line));
      tokens.replace(next);
      log.info({ tokensConfigured: next.length }, `SIGHUP: tokens read again from ${file}: ${next.length} in use`);
    } catch (e) {
      log.error(`SIGHUP: ${(e as Error).message}; the tokens in use are kept`);
    }
  });
}
