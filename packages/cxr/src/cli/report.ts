// `cxr report RUN_DIR`: plots and an HTML page from a run directory, into RUN_DIR/report/.
import type { Command } from 'commander';
import * as path from 'node:path';
import { writeReport } from '../report/write_report';

export function register(program: Command): void {
  program
    .command('report')
    .description('write plots (SVG and PNG) and a self-contained index.html for a training/evaluation run')
    .argument('<run-dir>', 'run folder with cxr.json, log.jsonl, predictions/<split>.json and/or metrics/<split>.json')
    .option('--json', 'print {files, warnings} as one JSON object')
    .action(async (runDir: string, o: { json?: boolean }) => {
      const r = await writeReport(runDir);
      if (o.json) {
        process.stdout.write(JSON.stringify(r) + '\n');
        return;
      }
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(`wrote ${r.files.length} files to ${path.join(runDir, 'report')}\n`);
      process.stdout.write(`open ${path.resolve(r.files[r.files.length - 1])}\n`);
    });
}
