#!/usr/bin/env node
// Fails on any line longer than the limit (default 120, the formatter's line width in biome.jsonc)
// in packages/*/src and packages/*/test TypeScript. The formatter wraps code but not a long string
// or template literal, nor a comment: those are split by hand (concatenation, an array of lines, a
// named constant), and this check is what keeps them within the width.
// Usage: node scripts/check-line-width.js [--max N] [ROOT]
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const args = process.argv.slice(2);
const at = args.indexOf('--max');
const max = at >= 0 ? Number(args.splice(at, 2)[1]) : 120;
if (!Number.isInteger(max) || max < 1) {
  console.error('--max needs a positive whole number');
  process.exit(2);
}
const root = path.resolve(args[0] ?? path.join(__dirname, '..'));

function tsFiles(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : tsFiles(p);
    return e.isFile() && e.name.endsWith('.ts') ? [p] : [];
  });
}

const packages = path.join(root, 'packages');
const files = fs.existsSync(packages)
  ? fs.readdirSync(packages).flatMap((p) => ['src', 'test'].flatMap((d) => tsFiles(path.join(packages, p, d))))
  : [];
const long = [];
for (const f of files) {
  fs.readFileSync(f, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      // Code points, not UTF-16 units, so "×" or "–" count as one column.
      const width = [...line.replace(/\r$/, '')].length;
      if (width > max) long.push(`${path.relative(root, f)}:${i + 1}: ${width} > ${max}`);
    });
}
for (const l of long) console.log(l);
console.log(`line width: ${files.length} files, ${long.length} line(s) over ${max} characters`);
process.exit(long.length ? 1 : 0);
