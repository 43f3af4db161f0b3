// `cxr orthanc sync`: predicts every new chest radiograph that arrives in an Orthanc PACS and
// stores the report (DICOM SR) and the heat map (Secondary Capture) back into its study.
// Credentials come from CXR_ORTHANC_URL/_USER/_PASSWORD or --config, never from flags.
// Polling rides out an outage of Orthanc or of the audit log, at start as while running: the pass stops
// with the cursor before the film whose results were not stored, and the next poll does that film again.
// A film stopped by a fault not its own (a bug, a broken install) is tried on a few polls, then the sync
// exits before it. A login Orthanc refuses at start, or an audit log that cannot be used (a malformed URL,
// a refused login, a file that is no log), is a configuration fault: said at once, exit 1.
import { Command, Option } from 'commander';
import { positiveInt, timerMs, timerSeconds } from './args';
import * as path from 'node:path';
import { initEngine } from '../engine';
import { modelIdentity } from '../models/io';
import {
  countFilm,
  type InstanceOutcome,
  InternalFailures,
  loadOrthancConfig,
  OrthancClient,
  OrthancError,
  ProcessingError,
  processInstance,
  readState,
  type SyncOptions,
  syncOnce,
  type SyncStats,
} from '../pacs';
import { auditRecordOf } from '../predict/audit_record';
import { Predictor } from '../predict/predictor';
import {
  auditLogError,
  connectQueue,
  insertFilmRow,
  isOutage,
  type JobQueue,
  type JobSpec,
  loadRedisUrl,
} from '../queue';
import { type AuditStore, DEFAULT_DB_WORDS, defaultDbPath } from '../serve/audit';
import { AuditCloseError } from '../serve/audit_store';
import { emptyStats, OutageLines, queueFilms, summary } from './orthanc_lines';
import { checkModelOption } from './model_folder';
import { AuditOpenError, checkDbFolder, openAuditStoreForWriting } from './writable';

/** The cursor a pass saved, or null when the file cannot be read (said by the next pass, not here). */
function savedCursor(file: string): number | null {
  try {
    return readState(file)?.last ?? null;
  } catch {
    return null;
  }
}

/** An operating point the model lacks would fail every film: refused at start instead. */
function checkOperatingPoint(name: string | undefined, points: Record<string, unknown>): void {
  if (name !== undefined && !Object.hasOwn(points, name)) {
    throw new Error(`--operating-point ${name}: this model has ${Object.keys(points).join(', ')}`);
  }
}

export function register(program: Command): void {
  const orthanc = program.command('orthanc').description('work with an Orthanc PACS (docs/deployment.md)');
  orthanc
    .command('sync')
    .summary('predict new chest films from Orthanc and store an SR report and heat map in each study')
    .description(
      "predict new chest radiographs from Orthanc's change feed and store an SR report and a heat map " +
        'back into each study. Connection: CXR_ORTHANC_URL, CXR_ORTHANC_USER, CXR_ORTHANC_PASSWORD (scripts/stack.sh ' +
        'writes them to .stack/env) or --config. Polls until SIGINT/SIGTERM unless --once.',
    )
    .option('--once', 'one pass to the end of the change feed, then exit')
    .option('--url <url>', "Orthanc URL (default: $CXR_ORTHANC_URL or the config file's)")
    .option('--config <file>', 'JSON file {"url", "user", "password"} (mode 600)')
    .option('--state <file>', 'cursor file', '.cxr-orthanc-state.json')
    .option(
      '--since-start',
      'read the change feed from its beginning (default: from the saved cursor; a first run starts at the end)',
    )
    .option('--model <dir>', 'model folder (default: the shipped model, or $CXR_MODEL)')
    .option('--operating-point <name>', "threshold to call PNEUMONIA (default: the model's)")
    .addOption(
      new Option(
        '--ood-policy <policy>',
        'films that do not look like chest X-rays: warn (in the report), or refuse (no result)',
      )
        .choices(['warn', 'refuse'])
        .default('warn'),
    )
    // A timer's longest wait at most: a longer one fired at once, and the sync polled without pause.
    .option('--interval <seconds>', 'seconds between polls', timerSeconds, 5)
    .option('--batch <n>', 'changes read per request', positiveInt, 100)
    .option('--threads <n>', 'engine threads (default: all cores)', positiveInt)
    .option('--json', "print the run's counts as JSON on stdout")
    .option(
      '--queue',
      'queue each new chest film for cxr worker (normal priority) instead of predicting here; ' +
        'Redis: CXR_REDIS_URL or --redis-config ("processed" then counts films queued)',
    )
    .option('--redis-config <file>', 'with --queue: JSON file {"url": "redis://..."} (mode 600)')
    .option(
      '--verbose',
      'with --queue, a line per film (queued, already queued or done, skipped); by default a summary line per ' +
        '--batch films and per poll. Without --queue every film has its line',
    )
    .option(
      '--db <file|url>',
      'audit log for the films predicted here: SQLite file or postgres:// URL (default: ' +
        `${DEFAULT_DB_WORDS}, as cxr serve); with --queue the workers write it`,
    )
    .option('--no-audit', 'do not write the predictions to the audit log')
    .option(
      '--close-timeout <ms>',
      'after SIGINT/SIGTERM or --once, how long to wait for the audit log to close before exiting anyway (exit 1)',
      timerMs, // not past a timer's longest wait: a longer one gave up on the close at once
      10_000,
    )
    .action(async (o) => {
      const log = (line: string) => process.stderr.write(`cxr orthanc: ${line}\n`);
      // The folders the user named, before Orthanc is asked anything.
      const modelDir = path.resolve(checkModelOption(o.model));
      if (!o.queue && o.audit !== false) checkDbFolder(o.db);
      const config = loadOrthancConfig({ configFile: o.config, url: o.url, warn: log });
      const client = new OrthancClient(config);
      // An Orthanc outage is said when it starts, once a minute while it lasts, and when it ends; not every poll.
      const outage = new OutageLines(log, o.interval);
      try {
        await client.checkConnection();
      } catch (e) {
        // Orthanc away is waited for (polling); a refused login or no Orthanc at the URL is not.
        if (o.once || !(e instanceof OrthancError && e.outage)) throw e;
        outage.failed(e.message, 'the first poll tries again');
      }
      let predictor: Predictor | undefined;
      let queue: JobQueue | undefined;
      let handleInstance: SyncOptions['handleInstance'];
      let audit: AuditStore | undefined;
      // As cxr predict: one audit row per film, keyed by its SOP Instance UID, so a rerun adds none.
      const auditTarget = !o.queue && o.audit !== false ? (o.db ?? defaultDbPath()) : null;
      let model: { name: string; version: string };
      // With --queue: the films skipped in this poll and since its last "so far" line, by reason.
      const skipReasons = { pass: new Map<string, number>(), batch: new Map<string, number>() };
      if (o.queue) {
        const identity = modelIdentity(modelDir);
        checkOperatingPoint(o.operatingPoint, identity.meta.operatingPoints);
        queue = await connectQueue(loadRedisUrl({ configFile: o.redisConfig, warn: log }), identity.sha256);
        const spec: JobSpec = {
          modelSha256: identity.sha256,
          operatingPoint: o.operatingPoint ?? identity.meta.defaultOperatingPoint,
          heatmap: true,
          requestedBy: null,
          priority: 'normal',
        };
        const skipped = (reason: string) => {
          for (const why of [skipReasons.pass, skipReasons.batch]) why.set(reason, (why.get(reason) ?? 0) + 1);
        };
        handleInstance = queueFilms(queue, client, spec, skipped, o.verbose ? log : null);
        model = identity.meta;
      } else {
        await initEngine(o.threads);
        predictor = await Predictor.load(modelDir, { oodPolicy: o.oodPolicy });
        model = predictor.model;
        checkOperatingPoint(o.operatingPoint, predictor.model.meta.operatingPoints);
        if (auditTarget) {
          try {
            audit = await openAuditStoreForWriting(auditTarget);
          } catch (e) {
            // A log away for now is waited for (polling), as Orthanc is; one that cannot be used is not.
            if (o.once || !(e instanceof AuditOpenError && e.away)) throw e;
            log(`${e.reason}; the first poll tries again (no film is predicted until the audit log opens)`);
          }
        }
      }
      const loaded = predictor;
      // The log is open whenever a film is handled: a pass starts only once it opened (the loop below).
      const auditStore = (): AuditStore => {
        if (!audit) throw new Error('internal error: a film was handled before the audit log opened');
        return audit;
      };
      const onPrediction: SyncOptions['onPrediction'] =
        loaded && auditTarget
          ? async (prediction, film) => {
              const store = auditStore();
              const record = auditRecordOf(prediction, {
                model: loaded.model,
                latencyMs: film.latencyMs,
                requestedBy: null,
                hasHeatmap: false,
                hasThumbnail: false,
                resultKey: film.sopInstanceUid,
              });
              try {
                // Another film's row under the same UID is no answer for this one: it gets its own (film_rows.ts).
                await insertFilmRow(store, record, null, film.sopInstanceUid);
              } catch (e) {
                // Named (password hidden), and thrown before the results are stored: the film is done again.
                throw auditLogError(store.location, e);
              }
            }
          : undefined;
      // The log is asked before each film is predicted: during an outage no film is predicted only for its row
      // to be refused (the model run again, and a "predicted" line logged, on every poll the outage lasts).
      const beforePredicting: SyncOptions['beforePredicting'] = onPrediction
        ? async () => {
            const store = auditStore();
            try {
              await store.ping();
            } catch (e) {
              throw auditLogError(store.location, e);
            }
          }
        : undefined;
      let stopping = false;
      let wake: (() => void) | null = null;
      const onSignal = (sig: string) => {
        if (stopping) process.exit(130); // a second signal: stop now
        stopping = true;
        log(`${sig}: stopping after the current film`);
        wake?.();
      };
      const handlers = { SIGINT: () => onSignal('SIGINT'), SIGTERM: () => onSignal('SIGTERM') };
      process.on('SIGINT', handlers.SIGINT);
      process.on('SIGTERM', handlers.SIGTERM);
      if (!o.once)
        log(
          `watching ${config.url} every ${o.interval} s with ${model.name} ${model.version}` +
            `${queue ? `, queueing to ${queue.name}` : ''} (Ctrl-C to stop)`,
        );
      // Counted film by film as each is done: a pass an outage interrupts still did the films before it.
      const total: SyncStats = { instances: 0, processed: 0, alreadyDone: 0, skipped: 0, failed: 0, cursor: 0 };
      let sinceStart = !!o.sinceStart;
      // cxr's own results skipped, in this pass and in all: counted in the summary lines, not logged one by one.
      const own = { pass: 0, total: 0 };
      const onOwnResult = () => {
        own.pass++;
        own.total++;
      };
      const internal = new InternalFailures();
      let batch = emptyStats();
      // Every film through `internal`: one given up after its polls is counted failed, not tried again.
      const handleFilm = async (id: string): Promise<InstanceOutcome> => {
        let outcome: InstanceOutcome;
        if (internal.passedOver(id)) {
          log(`failed ${id}: passed over after ${internal.limit} polls stopped at it for faults not its own`);
          outcome = 'failed'; // in the run's totals too, as in the pass's
        } else {
          outcome = handleInstance
            ? await handleInstance(id)
            : await processInstance(client, predictor!, id, {
                operatingPoint: o.operatingPoint,
                log,
                onPrediction,
                beforePredicting,
                onOwnResult,
              });
          if (outcome === 'processed') internal.worked();
        }
        countFilm(total, outcome);
        // With --queue, a summary line per --batch films of a long pass (a backfill), as each pass has its own.
        if (queue) {
          countFilm(batch, outcome);
          if (batch.instances >= o.batch) {
            log(`so far in this poll: ${summary(batch, true, 0, skipReasons.batch, false)}`);
            batch = emptyStats();
            skipReasons.batch.clear();
          }
        }
        return outcome;
      };
      try {
        for (;;) {
          try {
            // Away at start (or still at the last poll): opened before the pass; throws AuditOpenError.
            if (auditTarget && !audit) {
              audit = await openAuditStoreForWriting(auditTarget);
              log(`audit log ${audit.location} opened: reading the change feed`);
            }
            own.pass = 0;
            batch = emptyStats();
            skipReasons.pass.clear();
            skipReasons.batch.clear();
            const s = await syncOnce({
              client,
              predictor,
              handleInstance: handleFilm,
              stateFile: path.resolve(o.state),
              sinceStart,
              // Only the first pass restarts the feed: once its start is saved, a pass an outage stops is
              // followed by one from the saved cursor, not by reading the whole feed again.
              onStarted: () => {
                sinceStart = false;
              },
              operatingPoint: o.operatingPoint,
              batchSize: o.batch,
              shouldStop: () => stopping,
              log,
            });
            outage.answered();
            internal.reset();
            total.cursor = s.cursor;
            if (o.once || s.instances > 0) log(summary(s, !!queue, own.pass, queue ? skipReasons.pass : undefined));
          } catch (e) {
            // The pass saved its cursor at the last film it finished.
            total.cursor = savedCursor(path.resolve(o.state)) ?? total.cursor;
            // Any other failure of a pass came after Orthanc answered (the audit log opens before the pass).
            if (!(e instanceof AuditOpenError || (e instanceof OrthancError && e.outage))) outage.answered();
            if (e instanceof ProcessingError && !o.once) {
              // Perhaps passing (memory, a file being replaced): tried again. A lasting fault with one film
              // passes over it; with a second film before any other worked, the install is at fault: stop.
              const next = internal.retry(e);
              if (next === 'stop') {
                throw new Error(
                  `${e.message}. Tried on ${internal.attempts} polls, and the film given up before it was the last ` +
                    'one tried: the fault is not one film but the install. Stopping before this film (the cursor ' +
                    'stays before it, so the next start tries it again)',
                  { cause: e },
                );
              }
              if (next === 'pass-over') {
                log(
                  `warning: ${e.message}. Tried on ${internal.attempts} polls: passing over this film (counted ` +
                    'failed) so that the films after it are read; send it again once the fault is fixed',
                );
              } else {
                log(`${e.message} (attempt ${internal.attempts} of ${internal.limit}); retrying in ${o.interval} s`);
              }
            } else if (e instanceof AuditOpenError) {
              // Away at start and still: waited for. Back but refusing (a login changed meanwhile): a fault to fix.
              if (o.once || !e.away) throw e;
              log(`${e.reason}; no film is predicted until the audit log opens: retrying in ${o.interval} s`);
            } else {
              // The PACS or the audit log may be restarting; anything else is not for waiting out.
              if (o.once || !(e instanceof OrthancError || isOutage(e))) throw e;
              if (e instanceof OrthancError && e.outage) outage.failed(e.message);
              else log(`${(e as Error).message}; retrying in ${o.interval} s`);
            }
          }
          if (o.once || stopping) break;
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, o.interval * 1000);
            wake = () => {
              clearTimeout(t);
              resolve();
            };
          });
          wake = null;
          if (stopping) break;
        }
      } finally {
        process.off('SIGINT', handlers.SIGINT);
        process.off('SIGTERM', handlers.SIGTERM);
        predictor?.dispose();
        await queue?.close();
        try {
          await audit?.close(o.closeTimeout);
        } catch (e) {
          // A database that stopped answering (a network partition, AuditCloseError) is not waited for past the
          // bound; the sync exits 1 saying so.
          log(e instanceof AuditCloseError ? e.message : `closing the audit log failed: ${(e as Error).message}`);
          process.exitCode = 1;
        }
      }
      if (!o.once) log(`stopped: ${summary(total, !!queue, own.total)} in all`);
      if (o.json) process.stdout.write(JSON.stringify(total) + '\n');
      if (total.failed > 0 && o.once) process.exitCode = 2;
    });
}
