// `cxr history`: reads the audit log (`serve`, `predict`, `worker` and `orthanc sync` write it), never writes.
// `cxr history prune` removes the stored heat maps and thumbnails of older predictions; their rows stay.
// Neither migrates the log: run during a rolling upgrade, a migration would stop every older server still
// writing it (audit_migrations.ts checkUnmigratedVersion). An older log is read as it is; prune refuses it.
import { Command, Option } from 'commander';
import { intInRange } from './args';
import { z } from 'zod';
import { csvLine, printable } from '../report/csv';
import { type AuditRecord, DEFAULT_DB_WORDS, defaultDbPath, openAuditStore } from '../serve/audit';
import { DEFAULT_RETENTION_MS, retentionCutoff } from '../serve/retention';
import { auditTime } from '../serve/audit_sql';
import { DATE_TIME_FORMS, readDateTime } from '../serve/date_time';
import { shownLabel, statusOf } from '../predict/verdict';
import { VERDICT_STATUSES } from '../predict/prediction_schema';

/**
 * --since / --before: read as the API reads its times (serve/date_time.ts readDateTime, one rule for
 * both), and handed on as the audit log writes times.
 */
const isoTime = z.string().transform((value, ctx) => {
  const t = readDateTime(value);
  if ('ms' in t) return auditTime(t.ms);
  ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} ${t.error}` });
  return z.NEVER;
});

/** The options' problems, one line each, named as the user typed them (--since), not as zod's paths. */
function optionErrors(command: string, error: z.ZodError): Error {
  const lines = error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`);
  return new Error(`${command}: ${lines.join('; ')}`);
}

const MAX_LIMIT = 100_000;

/**
 * One of `values`, however the user cased it (`--label pneumonia`); anything else is refused saying what was
 * given and what is accepted, in words rather than zod's enum message.
 */
function oneOf<const T extends readonly string[]>(values: T) {
  return z.string().transform((value, ctx): T[number] => {
    const found = values.find((v) => v.toLowerCase() === value.trim().toLowerCase());
    if (found !== undefined) return found;
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is not one of ${values.join(', ')}` });
    return z.NEVER;
  });
}

const Options = z.object({
  db: z.string().min(1).optional(),
  json: z.boolean().optional(),
  csv: z.boolean().optional(),
  limit: z.number().int().min(1).max(MAX_LIMIT),
  label: oneOf(['NORMAL', 'PNEUMONIA'] as const).optional(),
  verdict: oneOf(VERDICT_STATUSES).optional(),
  since: isoTime.optional(),
});

/** One row as the text output shows it: the whole line through printable(). */
function line(r: AuditRecord): string {
  const when = r.createdAt.replace('T', ' ').slice(0, 19);
  const prob = `${(r.probability * 100).toFixed(1).padStart(5)}%`;
  // As the page shows it: an image that could not be assessed has no finding and no number.
  const status = statusOf(r);
  const label = shownLabel(r);
  const finding = label === null ? 'cannot assess'.padEnd(16) : `${label.padEnd(9)} ${prob}`;
  const outside = status === 'outside-population' ? '  (outside the intended population)' : '';
  const warn = r.warnings.length ? `  ! ${r.warnings.join('; ')}` : '';
  return printable(
    `${when}  ${r.id}  ${finding}  ${r.operatingPoint.padEnd(9)} ` +
      `${r.input.kind.padEnd(5)} ${`${r.input.width}x${r.input.height}`.padEnd(9)} ${r.model.name}@${r.model.version}` +
      // The token's name quoted and called one: the single CXR_API_TOKEN is named `default`, and "by default"
      // read as if no token had asked.
      `  ${Math.round(r.latencyMs)} ms${r.requestedBy ? `  by token "${r.requestedBy}"` : ''}${outside}${warn}`,
  );
}

const CSV_COLUMNS = [
  'created_at',
  'id',
  'label',
  'probability',
  'operating_point',
  'threshold',
  'kind',
  'width',
  'height',
  'input_sha256',
  'model',
  'requested_by',
  'latency_ms',
  'warnings',
  // Last: added with schema v4, after the columns scripts may read by position.
  'verdict',
];

function csvRow(r: AuditRecord): string {
  return csvLine([
    r.createdAt,
    r.id,
    shownLabel(r),
    r.probability,
    r.operatingPoint,
    r.threshold,
    r.input.kind,
    r.input.width,
    r.input.height,
    r.input.sha256,
    `${r.model.name}@${r.model.version}`,
    r.requestedBy,
    Math.round(r.latencyMs),
    r.warnings.join('; '),
    // As the text and the --verdict filter read it: an old row (no stored verdict) with warnings is cannot-assess.
    statusOf(r),
  ]);
}

const DB_HELP = `audit log: SQLite file or postgres:// URL (default: ${DEFAULT_DB_WORDS})`;

const PruneOptions = z.object({
  db: z.string().min(1).optional(),
  before: isoTime.optional(),
});

export function register(program: Command): void {
  const history = program.command('history');
  history
    .command('prune')
    .description('remove stored heat maps and thumbnails of older predictions (the predictions stay in the log)')
    .option('--db <file|url>', DB_HELP)
    .option('--before <time>', `${DATE_TIME_FORMS} (default: 30 days ago, the serve default)`)
    .action(async (_raw: Record<string, unknown>, cmd: Command) => {
      // --db may be parsed by `history` itself (it has the same option): read both levels.
      const parsed = PruneOptions.safeParse(cmd.optsWithGlobals());
      if (!parsed.success) throw optionErrors('history prune', parsed.error);
      const before = parsed.data.before ?? retentionCutoff(DEFAULT_RETENTION_MS);
      const audit = await openAuditStore(parsed.data.db ?? defaultDbPath(), { mustExist: true });
      try {
        const n = await audit.pruneImages(before);
        process.stdout.write(
          `removed the images of ${n} prediction(s) made before ${new Date(before).toISOString()} ` +
            `from ${audit.location}\n`,
        );
      } finally {
        await audit.close();
      }
    });
  history
    .description('list past predictions from the audit log, newest first')
    .option('--db <file|url>', DB_HELP)
    // One output format: --json with --csv used to print CSV without a word.
    .addOption(new Option('--json', 'JSON Lines: one prediction object per line').conflicts('csv'))
    .addOption(new Option('--csv', "CSV with a header row (text cells starting with = + - @ are prefixed with ')"))
    .option('--limit <n>', `how many (1 to ${MAX_LIMIT})`, intInRange(1, MAX_LIMIT), 20)
    .option(
      '--label <label>',
      "only NORMAL or PNEUMONIA findings, in any case ('cannot assess' rows have none: see --verdict)",
    )
    .option('--verdict <status>', `only ${VERDICT_STATUSES.join(', ')} answers`)
    .option('--since <time>', `only at or after this time: ${DATE_TIME_FORMS}`)
    .action(async (raw: Record<string, unknown>) => {
      const parsed = Options.safeParse(raw);
      if (!parsed.success) throw optionErrors('history', parsed.error);
      const o = parsed.data;
      const audit = await openAuditStore(o.db ?? defaultDbPath(), { readonly: true });
      try {
        const filter = { label: o.label, verdict: o.verdict, since: o.since };
        const page = await audit.list({ ...filter, limit: o.limit });
        // Page through: list() caps one page, --limit may ask for more.
        const items = [...page.items];
        const seen = new Set(items.map((r) => r.id));
        for (let p = 2; items.length < Math.min(o.limit, page.total); p++) {
          const next = (await audit.list({ ...filter, limit: page.limit, page: p })).items;
          if (!next.length) break;
          // Pages count from the newest row: a server writing meanwhile pushes rows down into the next page, and
          // those seen already are left out (rows are never deleted, so none is missed), not listed twice.
          for (const r of next) {
            if (items.length >= o.limit) break;
            if (seen.has(r.id)) continue;
            seen.add(r.id);
            items.push(r);
          }
        }
        if (o.csv) {
          process.stdout.write(CSV_COLUMNS.join(',') + '\n');
          for (const r of items) process.stdout.write(csvRow(r) + '\n');
        } else if (o.json) {
          // The label as every reader shows it: null for a cannot-assess answer (the log keeps the model's).
          for (const r of items) process.stdout.write(JSON.stringify({ ...r, label: shownLabel(r) }) + '\n');
        } else {
          process.stdout.write(
            `${page.total} prediction(s) in ${audit.location}` +
              `${items.length < page.total ? `, newest ${items.length}` : ''}\n`,
          );
          for (const r of items) process.stdout.write(line(r) + '\n');
        }
      } finally {
        await audit.close();
      }
    });
}
