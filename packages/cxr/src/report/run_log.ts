// A run folder's log.jsonl, the writing side (run_dir.ts reads it for reports): one JSON object
// per line, appended as training goes; every line of an epoch carries its `epoch`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../atomic_write';

export function runLogPath(outDir: string): string {
  return path.join(outDir, 'log.jsonl');
}

/**
 * Readies the log for a run: a fresh run starts with no log; a resumed one keeps only the lines
 * of epochs up to the checkpoint it resumes from (those logged after it would be run again). A line that does not
 * parse is the end of one a kill or a full disk cut short while it was appended: its epoch came after the
 * checkpoint (the line is written first), so it goes too, rather than stop the resume with a JSON error. The kept
 * lines are written beside the log and renamed over it: a full disk now leaves the log as it was, not cut short.
 */
export function startRunLog(file: string, resumedAfterEpoch: number | null): void {
  if (!fs.existsSync(file)) return;
  if (resumedAfterEpoch === null) {
    fs.rmSync(file);
    return;
  }
  const kept = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => {
      if (!l) return false;
      try {
        return (JSON.parse(l) as { epoch: number }).epoch <= resumedAfterEpoch;
      } catch {
        return false;
      }
    });
  writeFileAtomic(file, kept.map((l) => l + '\n').join(''));
}

export function appendRunLog(file: string, entry: Record<string, unknown>): void {
  fs.appendFileSync(file, JSON.stringify(entry) + '\n');
}
