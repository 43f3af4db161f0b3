#!/usr/bin/env node
// Guard-rail for the layering of src/: prints file-level import cycles, folder-level cycles and
// imports that run from a lower floor to a higher one. Exits 1 when there is any cycle or any upward
// import. Parses `import ... from './..'` (and `export ... from`,
// `import('...')`, `require('...')`) with a regex: the sources are plain TypeScript, no need for a parser.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

// CHECK_LAYERS_SRC points the check at another tree (its own test uses a small fixture).
const SRC = path.resolve(process.env.CHECK_LAYERS_SRC ?? path.join(__dirname, '..', 'src'));

// Floors, bottom up. A module's floor is that of its first folder under src/; files directly in src/
// (engine.ts, paths.ts, index.ts) are the bottom floor.
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
// src/index.ts is the package's public face: it re-exports from every floor by design.
const EXEMPT_FROM_FLOOR_CHECK = new Set(['index.ts']);

function walk(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(p));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function resolveImport(fromFile, spec) {
  const base = path.resolve(path.dirname(fromFile), spec);
  const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, path.join(base, 'index.ts')];
  return candidates.find((c) => c.endsWith('.ts') && fs.existsSync(c)) ?? null;
}

const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm;

function readImports(file) {
  // Strip comments so commented-out imports do not count.
  const text = fs
    .readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const deps = new Set();
  for (const m of text.matchAll(IMPORT_RE)) {
    const target = resolveImport(file, m[1]);
    if (target) deps.add(target);
  }
  return [...deps];
}

const rel = (f) => path.relative(SRC, f).split(path.sep).join('/');
const folderOf = (r) => (r.includes('/') ? r.split('/')[0] : '');
const floorOf = (r) => {
  const f = folderOf(r);
  if (!(f in FLOORS)) throw new Error(`check-layers: folder src/${f} has no floor; add it to FLOORS`);
  return FLOORS[f];
};

// Strongly connected components (Tarjan) of a graph given as Map<node, Set<node>>.
function cycles(graph) {
  let index = 0;
  const idx = new Map(),
    low = new Map(),
    onStack = new Set(),
    stack = [],
    out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? new Set()).has(v)) out.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const files = walk(SRC);
const fileGraph = new Map();
const folderGraph = new Map();
const folderEdges = new Map(); // "a -> b" -> example import
const upward = [];
for (const f of files) {
  const from = rel(f);
  const deps = readImports(f).map(rel);
  fileGraph.set(from, new Set(deps));
  for (const to of deps) {
    // The library API (src/index.ts) re-exports every floor: it stands above them all, not in src/'s root floor.
    const a = EXEMPT_FROM_FLOOR_CHECK.has(from) ? '(api)' : folderOf(from),
      b = folderOf(to);
    if (a !== b) {
      if (!folderGraph.has(a)) folderGraph.set(a, new Set());
      folderGraph.get(a).add(b);
      const key = `${a || '(src)'} -> ${b || '(src)'}`;
      if (!folderEdges.has(key)) folderEdges.set(key, `${from} -> ${to}`);
    }
    if (!EXEMPT_FROM_FLOOR_CHECK.has(from) && floorOf(to) > floorOf(from)) upward.push(`${from} -> ${to}`);
  }
}

const fileCycles = cycles(fileGraph);
const folderCycles = cycles(folderGraph);
console.log(`check-layers: ${files.length} files under src/`);
console.log(`file-level cycles: ${fileCycles.length}`);
for (const c of fileCycles) console.log(`  ${c.join(' <-> ')}`);
console.log(`folder-level cycles: ${folderCycles.length}`);
for (const c of folderCycles) {
  console.log(`  ${c.map((x) => x || '(src)').join(' <-> ')}`);
  for (const a of c)
    for (const b of c) {
      const e = folderEdges.get(`${a || '(src)'} -> ${b || '(src)'}`);
      if (a !== b && e) console.log(`    e.g. ${e}`);
    }
}
console.log(`upward imports: ${upward.length}`);
for (const u of upward) console.log(`  ${u}`);
if (fileCycles.length > 0 || folderCycles.length > 0 || upward.length > 0) process.exit(1);
