'use strict';
// The floors of packages/cxr/src, bottom up, and how src/ is read against them: check-layers.js forbids an import
// from a lower floor to a higher one, and module-map.js lists the modules floor by floor. Both walk src/ and
// place a module on its floor with the same two functions (walk, folderOf), so that the map lists exactly the
// modules the check checks. A module's floor is that of its first folder under src/; files directly in src/
// (engine.ts, paths.ts, ...) are the bottom floor, all but the package's entries (ENTRIES: the library API, which
// stands above them all: check-layers.js).
const fs = require('node:fs');
const path = require('node:path');

const FLOORS = {
  '': 0,
  data: 1,
  models: 2,
  eval: 3,
  explain: 3,
  predict: 4,
  report: 4,
  train: 5,
  serve: 5,
  web: 5,
  gan: 5,
  experiments: 5,
  adapt: 5,
  robustness: 5,
  pacs: 5,
  dicom_out: 5,
  queue: 5,
  cli: 6,
};

/**
 * The package's entries (package.json "exports"): the library API (index.ts) and its lighter part for a program
 * that only predicts (predict_entry.ts). They re-export from many floors by design, so they stand above them all.
 */
const ENTRIES = new Set(['index.ts', 'predict_entry.ts']);

const SOURCE_EXT = /\.(?:ts|mts|cts|tsx)$/;
const DECLARATION = /\.d\.(?:ts|mts|cts)$/;

/**
 * Every TypeScript source file under `dir` (declaration files are not modules), as absolute paths, in name
 * order folder by folder: the same order on every file system, so that the map and the check's report do not
 * change with the order the directory happens to list its entries in.
 */
function walk(dir) {
  const out = [];
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(p));
    else if (SOURCE_EXT.test(entry.name) && !DECLARATION.test(entry.name)) out.push(p);
  }
  return out;
}

/** The folder whose floor a module is on: the first of its path under src/ ('/'-separated), '' for src/ itself. */
const folderOf = (rel) => (rel.includes('/') ? rel.split('/')[0] : '');

module.exports = { ENTRIES, FLOORS, walk, folderOf };
