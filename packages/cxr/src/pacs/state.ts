// The sync's cursor in Orthanc's change feed, kept in a small JSON file. It is written atomically
// (temporary file, then rename) before the first batch, whatever the start, and after each batch, so a
// crash leaves either the old cursor or the new one: a restart redoes at most one batch (harmless: results
// already stored are found and not written again) and never skips a change.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic_write';
import { makeDirs } from '../make_dirs';

const StateSchema = z.object({
  format: z.literal(1),
  /** The Orthanc this cursor belongs to: Seq numbers mean nothing on another server. */
  url: z.string(),
  last: z.number().int().nonnegative(),
  updatedAt: z.string(),
});
export type SyncState = z.infer<typeof StateSchema>;

export function readState(file: string): SyncState | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read state file ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`state file ${file} is not JSON: remove it (and use --since-start to redo everything)`);
  }
  const r = StateSchema.safeParse(json);
  if (!r.success)
    throw new Error(
      `state file ${file} is not a cxr sync state (${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message})`,
    );
  return r.data;
}

export function writeState(file: string, url: string, last: number): void {
  const state: SyncState = { format: 1, url, last, updatedAt: new Date().toISOString() };
  makeDirs(path.dirname(path.resolve(file)));
  writeFileAtomic(file, JSON.stringify(state, null, 2) + '\n');
}
