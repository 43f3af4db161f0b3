// `cxr report RUN_DIR`: plots and an HTML page from a run directory, into RUN_DIR/report/.
import type { Command } from 'commander';
import * as path from 'node:path';
import { checkRunDir } from '../report/run_dir';
import { writeReport } from '../report/write_report';
import { unfinishedRun, unfinishedRunWords } from './model_folder';

export function register(program: Command): void {
  program
    .command('report')
    .description('write plots (SVG and PNG) and a self-contained index.html for a training/evaluation run')
    .argument('<run-dir>', 'run folder with cxr.json, log.jsonl, predictions/<split>.json and/or metrics/<split>.json')
    .option('--json', 'print {files, warnings} as one JSON object')
    .action(async (runDir: string, o: { json?: boolean }) => {
      // A run stopped before it wrote its model is said as such, with the command that finishes it, as every
      // command given that folder says it: its report has the training log alone ("nothing to evaluate"), and
      // one stopped before its first epoch has none ("no run record here", though the folder holds a run).
      const run = unfinishedRun(runDir);
      const unfinished = run ? unfinishedRunWords(runDir, run) : null;
      if (unfinished) {
        try {
          checkRunDir(runDir);
        } catch (e) {
          throw new Error(unfinished, { cause: e });
        }
      }
      const r = await writeReport(runDir);
      const warnings = unfinished ? [`${unfinished}\nuntil then the report shows its training log only`] : [];
      warnings.push(...r.warnings);
      if (o.json) {
        process.stdout.write(JSON.stringify({ ...r, warnings }) + '\n');
        return;
      }
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(`wrote ${r.files.length} files to ${path.join(runDir, 'report')}\n`);
      process.stdout.write(`open ${path.resolve(r.files[r.files.length - 1])}\n`);
    });
}
