// `cxr predict PATH…`: predictions for a batch of files, one output row per file, in the order
// the files were named (folders sorted by name). A file that cannot be read or is not a usable
// image gets a row with its error and its code, is named on stderr with why, and the batch goes on. In a
// folder, an image the decoder does not read (a HEIC or WebP from a phone) or a file named like a film (an
// empty `x.jpg`) is such a file too: an archive's films must not vanish into a count. Only files that are
// no image by name and bytes (notes.txt, Thumbs.db) are skipped, and counted, not listed: an archive's
// reports would bury the films that failed. An empty file without an extension (README, LICENSE) is skipped
// too, yet named: an extensionless name may have been a DICOM (batch_inputs.ts emptySkipped). Every
// prediction is written to the audit log (the one `cxr serve` writes, read by `cxr history`) unless --no-audit.
//
// Exit status: 0 when every file got a prediction; 2 when some did and some failed (as `cxr orthanc sync
// --once`: a script sees the failures); 1 when none did (no files, or every file failed), and for usage
// errors or a model that cannot be loaded; 130 (SIGINT) or 143 (SIGTERM)
// when stopped: the files in flight finish, the output is closed (a whole JSON array), and stderr says
// how many files were done. A second signal stops at once, the output still closed (after the rows written).
import { Command, InvalidArgumentError, Option } from 'commander';
import { positiveInt } from './args';
import * as path from 'node:path';
import { initEngine } from '../engine';
import { auditRecordOf } from '../predict/audit_record';
import { collectInputs, runBatch } from '../predict/batch';
import { EMPTY_FILE_RULE, emptySkippedLine, noFilmsIn } from '../predict/batch_inputs';
import { isStatedAge, STATED_AGE_RANGE } from '../predict/verdict';
import { type AuditStore, DEFAULT_DB_WORDS, defaultDbPath } from '../serve/audit';
import { checkModelOption } from './model_folder';
import { printable } from '../report/csv';
import { checkDbFolder, ensureWritableDir, openAuditStoreForWriting } from './writable';

/** Years, as `--patient-age` takes them (the range Predictor accepts); `cxr enqueue` takes them too. */
export function patientAge(v: string): number {
  // Decimal digits only, as the API takes them: '0x10' is not 16 years, nor '1e1' ten.
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !isStatedAge(n))
    throw new InvalidArgumentError(
      `a number of years from ${STATED_AGE_RANGE.min} to ${STATED_AGE_RANGE.max} in decimal digits`,
    );
  return n;
}

export function register(program: Command): void {
  program
    .command('predict')
    .summary('predict JPEG, PNG or DICOM files or folders: one row per file, audit-logged')
    .description(
      'predict JPEG, PNG or DICOM files (or folders of them): one row per file on stdout. ' +
        'A file that fails (in a folder: any image or file named like one) gets a row with its error and code, ' +
        'is named on stderr, and the batch goes on; files in a folder that are no images are skipped. ' +
        `${EMPTY_FILE_RULE} ` +
        'Every prediction goes to the audit log (cxr history). ' +
        'Exit status 0 when every file got a prediction, 2 when some failed, 1 when none got one ' +
        '(or no film was found: the folders named hold no JPEG, PNG or DICOM file).',
    )
    .argument('<paths...>', 'files and folders')
    .option('--model <dir>', 'model folder (default: the shipped model, or $CXR_MODEL)')
    .option('-r, --recursive', 'descend into sub-folders')
    .addOption(new Option('--format <format>', 'output format').choices(['csv', 'json']).default('csv'))
    // One output format: --json with --format csv used to print JSON without a word (as `cxr history` refuses
    // --json with --csv). --format json --json is no conflict.
    .option('--json', 'the same as --format json: one JSON array of rows')
    .option('--heatmaps <dir>', 'write a Grad-CAM overlay PNG per file into this folder')
    .option('--operating-point <name>', "threshold to call PNEUMONIA (default: the model's, usually balanced)")
    .option(
      '--patient-age <years>',
      "the patient's age, for every file: under 1 or over 10, outside-population (so is a DICOM whose own age is)",
      patientAge,
    )
    .addOption(
      new Option('--ood-policy <policy>', 'images that do not look like chest X-rays: warn, or refuse (an error row)')
        .choices(['warn', 'refuse'])
        .default('warn'),
    )
    .option('--db <file|url>', `audit log: SQLite file or postgres:// URL (default: ${DEFAULT_DB_WORDS})`)
    .option('--no-audit', 'do not write the predictions to the audit log')
    .option('--concurrency <n>', 'files in flight at once (default: number of cores)', positiveInt)
    .option('--threads <n>', 'engine threads (default: all cores)', positiveInt)
    .option('--no-progress', 'no progress bar (it is shown only on a terminal anyway)')
    .action(async (paths: string[], o, cmd: Command) => {
      const log = (l: string) => process.stderr.write(`cxr predict: ${l}\n`);
      if (o.json && o.format !== 'json' && cmd.getOptionValueSource('format') !== 'default')
        cmd.error(`error: option '--json' cannot be used with option '--format ${o.format}' (choose one format)`);
      // Everything that can fail without the model is checked first: no engine start for nothing.
      if (o.audit !== false) checkDbFolder(o.db);
      const inputs = collectInputs(paths, !!o.recursive, { imageLike: true });
      for (const dir of inputs.foldersWithImagesBelow)
        log(`hint: ${dir} has sub-folders with images; add -r to include them`);
      for (const note of inputs.notes) log(note);
      for (const file of inputs.emptySkipped) log(emptySkippedLine(printable(file)));
      for (const dir of inputs.emptyFolders) log(noFilmsIn(printable(dir), !!o.recursive));
      if (inputs.jobs.length === 0) {
        throw new Error(
          `predict: nothing to predict in ${paths.join(', ')}` +
            `${inputs.skipped.length ? ` (${inputs.skipped.length} non-image file(s) skipped)` : ''}`,
        );
      }
      if (o.heatmaps) ensureWritableDir(o.heatmaps, '--heatmaps');
      const modelDir = path.resolve(checkModelOption(o.model));
      const audit: AuditStore | null =
        o.audit === false ? null : await openAuditStoreForWriting(o.db ?? defaultDbPath());
      // Stopping cleanly: the rows done are written and the output closed, rather than cut mid-row.
      const stop = new AbortController();
      const halt = new AbortController();
      let stoppedBy: NodeJS.Signals | null = null;
      let batchStarted = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (stoppedBy) {
          // At once, yet the output stays whole: runBatch closes it now (its abort listener writes the end of
          // the JSON array, between two rows), and the process ends once stdout has taken it. Before the batch
          // has started, nothing is written yet: runBatch then closes the output as soon as it is called (a
          // third signal, the engine still starting, ends the process with nothing written).
          const code = signal === 'SIGINT' ? 130 : 143;
          if (halt.signal.aborted) process.exit(code); // a third: at once, whatever is left unwritten
          halt.abort();
          if (!batchStarted) return;
          log(`${signal} again: stopping at once (the output holds the files done before it)`);
          process.stdout.write('', () => process.exit(code));
          return;
        }
        stoppedBy = signal;
        log(`${signal}: finishing the files in progress, then stopping (again to stop at once)`);
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        await initEngine(o.threads);
        batchStarted = true;
        const result = await runBatch({
          paths,
          jobs: inputs.jobs,
          modelDir,
          recursive: !!o.recursive,
          format: o.json ? 'json' : o.format,
          heatmapDir: o.heatmaps,
          operatingPoint: o.operatingPoint,
          patientAge: o.patientAge,
          oodPolicy: o.oodPolicy,
          concurrency: o.concurrency,
          progress: o.progress === false ? false : undefined,
          signal: stop.signal,
          halt: halt.signal,
          onPrediction: audit
            ? (_file, r, model, latencyMs) =>
                audit.insert(auditRecordOf(r, { model, latencyMs, requestedBy: null }), null)
            : undefined,
        });
        // Each failure named, together above the summary (not among the progress bar's lines), for the
        // person who has to find those files in the archive; the output's rows say the same.
        // The file's name as whoever named it chose it: its escape sequences must not move the terminal's cursor.
        for (const r of result.rows)
          if (r.error !== null)
            log(printable(`failed: ${r.file}: ${r.error}${r.errorCode ? ` (${r.errorCode})` : ''}`));
        const skipped = inputs.skipped.length ? `, ${inputs.skipped.length} skipped (not images)` : '';
        if (result.failed || skipped) log(`${result.processed} predicted, ${result.failed} failed${skipped}`);
        if (audit && result.processed)
          log(`${result.processed} prediction(s) written to the audit log ${audit.location}`);
        if (stoppedBy) {
          log(`stopped by ${stoppedBy}: ${result.rows.length} of ${result.total} file(s) done`);
          process.exitCode = stoppedBy === 'SIGINT' ? 130 : 143;
        } else if (result.processed === 0) process.exitCode = 1;
        else if (result.failed > 0) process.exitCode = 2;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await audit?.close();
      }
    });
}
