// Whether two evaluations, or two comparisons, are of the same films: what `cxr evaluate --out` and `cxr compare
// --out` compare before they replace a file of another's. Each records its films as `FOLDER (SPLIT)` (the data
// folder's real path and the split read in it), so `--data x/val` and `--data x --split val`, one folder of films
// named two ways, were "other films" and refused. Both spellings are taken to the folder that holds the films.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findChild, SPLIT_NAMES } from '../data/dataset';

/**
 * `FOLDER (SPLIT)` with FOLDER the one holding the split's NORMAL/ and PNEUMONIA/: a Kaggle root's split folder
 * (found as the dataset scan finds it, in any case) in place of the root. Any other text is returned as it is.
 */
export function filmsFolderSource(source: string): string {
  const m = /^(.*) \(([^()]+)\)$/s.exec(source);
  if (!m || !(SPLIT_NAMES as readonly string[]).includes(m[2])) return source;
  const [, folder, split] = m;
  let child: string | undefined;
  try {
    child = findChild(fs.readdirSync(folder, { withFileTypes: true }), split);
  } catch {
    return source; // The folder is gone or unreadable: only the same text names the same films.
  }
  if (!child) return source;
  try {
    return `${fs.realpathSync(path.join(folder, child))} (${split})`;
  } catch {
    return source;
  }
}

/** Whether two recorded sources name the same films, however the data folder and split were written. */
export function sameFilms(a: string, b: string): boolean {
  return a === b || filmsFolderSource(a) === filmsFolderSource(b);
}
