#!/usr/bin/env node
// Guard-rail for the layering of src/: prints file-level import cycles, folder-level cycles and
// imports that run from a lower floor to a higher one. Exits 1 when there is any cycle, any upward
// import, any import of the package index (src/index.ts) from inside src/, or any dynamic import whose
// path is computed (the check could not tell what it loads).
// Imports are read with TypeScript's own parser, not a regex: a regex comment-stripper took the `/*` of a
// glob in a string or a line comment for a block comment and dropped the imports after it. The parser
// sees `import`/`export ... from` (type-only too), `import x = require(..)`, `import(..)` (with a string or
// a no-substitution template literal), `import('..').T` types and `require(..)`; comments and strings
// never count. (ts.preProcessFile is faster but misses `export * as ns from` and silently skips a
// computed `import(..)`.)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

// CHECK_LAYERS_SRC points the check at another tree (its own test uses a small fixture).
const SRC = path.resolve(process.env.CHECK_LAYERS_SRC ?? path.join(__dirname, '..', 'src'));

// Floors, bottom up, and the walk of src/ (scripts/floors.js, which docs/modules.md's generator reads too).
const { ENTRIES, FLOORS, folderOf, walk } = require('./floors');
// The package's entries (src/index.ts, src/predict_entry.ts) are its public face: they re-export from many floors
// by design, so they stand above them all. Their own imports are not checked, and importing one from inside src/
// reaches many floors at once: that counts as an upward import whatever the importer's floor.
const EXEMPT_FROM_FLOOR_CHECK = ENTRIES;

// The emitted extension a source file is imported by ('./x.js' is x.ts or x.tsx, './x.mjs' is x.mts).
const SOURCE_FOR = { '.js': ['.ts', '.tsx'], '.jsx': ['.tsx'], '.mjs': ['.mts'], '.cjs': ['.cts'] };

// Resolves a relative specifier to one of the walked source files (null for anything else: a package,
// JSON, a declaration file).
function resolveImport(fromFile, spec, sources) {
  const base = path.resolve(path.dirname(fromFile), spec);
  const ext = path.extname(base);
  const stem = base.slice(0, base.length - ext.length);
  const candidates = [
    base,
    ...(SOURCE_FOR[ext] ?? []).map((e) => stem + e),
    `${base}.ts`,
    `${base}.tsx`,
    path.join(base, 'index.ts'),
    path.join(base, 'index.tsx'),
  ];
  return candidates.find((c) => sources.has(c)) ?? null;
}

const literalText = (node) =>
  node && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : null;

// The module specifiers a file imports, and the dynamic imports whose path is not a literal.
function readImports(file) {
  // JSDoc is left unparsed: it holds no imports that count, and skipping it makes the parse about a third faster.
  const options = { languageVersion: ts.ScriptTarget.Latest, jsDocParsingMode: ts.JSDocParsingMode.ParseNone };
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), options, false);
  const specs = [];
  const computed = [];
  const visit = (node) => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) {
      const s = literalText(node.moduleSpecifier);
      if (s !== null) specs.push(s);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const s = literalText(node.moduleReference.expression);
      if (s !== null) specs.push(s);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      const s = literalText(node.argument.literal);
      if (s !== null) specs.push(s);
    } else if (ts.isCallExpression(node)) {
      const arg = node.arguments[0];
      const s = literalText(arg);
      if (node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        if (s !== null) specs.push(s);
        else {
          const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
          const what = arg ? arg.getText(sf).replace(/\s+/g, ' ') : '';
          computed.push({ line, what: what.length > 60 ? `${what.slice(0, 57)}...` : what });
        }
      } else if (ts.isIdentifier(node.expression) && node.expression.text === 'require' && s !== null) {
        // A computed require() is allowed: src/ uses one for codec packages chosen at run time.
        specs.push(s);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return { specs, computed };
}

const rel = (f) => path.relative(SRC, f).split(path.sep).join('/');
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
const sources = new Set(files);
// The library API (the entries) re-exports many floors: it stands above them all, not in src/'s root floor.
const folderLabel = (r) => (EXEMPT_FROM_FLOOR_CHECK.has(r) ? '(api)' : folderOf(r));
const fileGraph = new Map();
const folderGraph = new Map();
const folderEdges = new Map(); // "a -> b" -> example import
const upward = [];
const computedImports = [];
for (const f of files) {
  const from = rel(f);
  const { specs, computed } = readImports(f);
  for (const c of computed) computedImports.push(`${from}:${c.line}: import(${c.what})`);
  const deps = new Set();
  for (const spec of specs) {
    const target = spec.startsWith('.') ? resolveImport(f, spec, sources) : null;
    if (target) deps.add(rel(target));
  }
  fileGraph.set(from, deps);
  for (const to of deps) {
    const a = folderLabel(from),
      b = folderLabel(to);
    if (a !== b) {
      if (!folderGraph.has(a)) folderGraph.set(a, new Set());
      folderGraph.get(a).add(b);
      const key = `${a || '(src)'} -> ${b || '(src)'}`;
      if (!folderEdges.has(key)) folderEdges.set(key, `${from} -> ${to}`);
    }
    if (EXEMPT_FROM_FLOOR_CHECK.has(from)) continue;
    if (EXEMPT_FROM_FLOOR_CHECK.has(to))
      upward.push(`${from} -> ${to} (it re-exports every floor; import the module that defines the name instead)`);
    else if (floorOf(to) > floorOf(from)) upward.push(`${from} -> ${to}`);
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
// Printed only when there are some, so the report of a clean tree keeps its three lines.
if (computedImports.length > 0) {
  console.log(`dynamic imports with a computed path: ${computedImports.length}`);
  console.log('  (the check cannot tell which module they load: write each path as a string literal)');
  for (const c of computedImports) console.log(`  ${c}`);
}
const failed = fileCycles.length + folderCycles.length + upward.length + computedImports.length > 0;
if (failed) process.exit(1);
