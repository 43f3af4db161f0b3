#!/usr/bin/env node
// Writes docs/modules.md: every module under packages/cxr/src, floor by floor, with the first sentence of
// the comment that opens it. docs/architecture.md is the map a newcomer reads first (floors, the paths
// through the house); this is the index beside it, made from the code so that it cannot fall behind:
// `--check` fails when the file differs from what the code says (test/module-map.test.ts runs it).
// Both ways it also fails when architecture.md's floor table, written by hand, disagrees with floors.js and src/.
//
//   node packages/cxr/scripts/module-map.js          rewrite docs/modules.md
//   node packages/cxr/scripts/module-map.js --check  exit 1 when docs/modules.md is out of date
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const SRC = path.join(__dirname, '..', 'src');
const OUT = path.join(__dirname, '..', '..', '..', 'docs', 'modules.md');
const { ENTRIES, FLOORS, folderOf, walk } = require('./floors');
const FLOOR_NAMES = [
  'shared (src/ itself)',
  'data',
  'models',
  'eval, explain',
  'predict, report',
  'the services',
  'cli',
];

/** The opening comment's first sentence (line or block comment), one line; '' when the file has none. */
function summary(file) {
  const text = fs.readFileSync(file, 'utf8').replace(/^#!.*\n/, '');
  const lines = [];
  const block = /^\s*\/\*\*?([\s\S]*?)\*\//.exec(text);
  if (block) {
    for (const l of block[1].split('\n')) lines.push(l.replace(/^\s*\*\s?/, ''));
  } else {
    for (const l of text.split('\n')) {
      if (!/^\s*\/\//.test(l)) break;
      lines.push(l.replace(/^\s*\/\/\s?/, ''));
    }
  }
  // Up to the first blank line (a comment's first paragraph), then its first sentence.
  const para = [];
  for (const l of lines) {
    if (!l.trim()) {
      if (para.length) break;
      continue;
    }
    para.push(l.trim());
  }
  return firstSentence(para.join(' ')).replace(/\|/g, '\\|');
}

/**
 * Up to the first full stop outside parentheses (not that of "e.g." or "i.e."); a long sentence is cut at its
 * first colon outside parentheses, where these comments go from what a module holds to how.
 */
function firstSentence(text) {
  let depth = 0;
  let colon = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (depth === 0 && c === ':' && colon < 0 && /\s/.test(text[i + 1] ?? ' ')) colon = i;
    else if (
      depth === 0 &&
      (c === '.' || c === '?') &&
      /\s/.test(text[i + 1] ?? ' ') &&
      !/\b(e\.g|i\.e)$/.test(text.slice(0, i))
    ) {
      const s = text.slice(0, i + 1);
      return s.length > 160 && colon > 0 ? `${text.slice(0, colon)}.` : s;
    }
  }
  // A paragraph that ends on a colon introduces a list or a drawing: what precedes it is the sentence.
  if (text.endsWith(':')) return `${text.slice(0, -1)}.`;
  return colon > 0 && text.length > 160 ? `${text.slice(0, colon)}.` : text;
}

function render() {
  const files = walk(SRC).map((f) => path.relative(SRC, f).split(path.sep).join('/'));
  const floors = [...new Set(Object.values(FLOORS))].sort((a, b) => a - b);
  const groups = floors.map((n) => [
    `Floor ${n}: ${
      FLOOR_NAMES[n] ??
      Object.keys(FLOORS)
        .filter((d) => FLOORS[d] === n)
        .join(', ')
    }`,
    Object.keys(FLOORS).filter((d) => FLOORS[d] === n),
  ]);
  const placed = new Set(Object.keys(FLOORS));
  groups.push([
    'Not on a floor (the library API, and any folder floors.js does not name)',
    [...new Set(files.map(folderOf).filter((d) => !placed.has(d)))],
  ]);
  const out = [
    '# Modules of packages/cxr/src',
    '',
    'Made by `node packages/cxr/scripts/module-map.js` from the comment that opens each module; do not edit by',
    'hand (`test/module-map.test.ts` fails when it is out of date). The floors and the paths through them are in',
    '[architecture.md](architecture.md).',
    '',
  ];
  for (const [title, folders] of groups) {
    // The entries are the library API, above every floor (check-layers.js), so they are listed apart.
    const mine = files.filter((f) =>
      ENTRIES.has(f) ? folders.length === 0 || title.startsWith('Not') : folders.includes(folderOf(f)),
    );
    if (!mine.length) continue;
    out.push(`## ${title}`, '', '| module | what it holds |', '| --- | --- |');
    for (const f of mine) out.push(`| \`${f}\` | ${summary(path.join(SRC, f)) || '(no opening comment)'} |`);
    out.push('');
  }
  return out.join('\n');
}

/**
 * Where docs/architecture.md's floor table disagrees with floors.js and src/: each folder of FLOORS must be named
 * (`name/`) in its own floor's row, and each file directly in src/ (but the entries) in floor 0's row, which names
 * no file src/ lacks. The table says what a floor is for, which modules.md cannot; a ground-floor file once went
 * unlisted there (config_file.ts).
 */
function floorTableProblems() {
  const rows = new Map();
  for (const line of fs.readFileSync(path.join(path.dirname(OUT), 'architecture.md'), 'utf8').split('\n')) {
    // | floor | folders | holds |: the names in backticks of the folders column.
    const m = /^\| (\d+) \| ([^|]+) \|/.exec(line);
    const names = m ? [...m[2].matchAll(/`([^`]+)`/g)].map((x) => x[1]) : [];
    if (m) rows.set(Number(m[1]), names);
  }
  const ground = new Set(walk(SRC).map((f) => path.relative(SRC, f).split(path.sep).join('/')));
  for (const f of ground) if (folderOf(f) !== '' || ENTRIES.has(f)) ground.delete(f);
  const problems = [];
  for (const [n, names] of rows)
    for (const name of names) {
      const dir = name.endsWith('/') ? name.slice(0, -1) : null;
      const floor = dir !== null && Object.hasOwn(FLOORS, dir) ? `on floor ${FLOORS[dir]}` : 'nowhere';
      if (dir !== null && FLOORS[dir] !== n) problems.push(`floor ${n} names ${name}, which floors.js puts ${floor}`);
      if (dir === null && (n !== 0 || !ground.has(name)))
        problems.push(`floor ${n} names ${name}, which is not a file directly in src/`);
    }
  for (const [dir, n] of Object.entries(FLOORS))
    if (dir && !(rows.get(n) ?? []).includes(`${dir}/`)) problems.push(`src/${dir}/ is missing from floor ${n}'s row`);
  for (const f of ground) if (!(rows.get(0) ?? []).includes(f)) problems.push(`src/${f} is missing from floor 0's row`);
  return problems;
}

const USAGE = 'usage: node packages/cxr/scripts/module-map.js [--check]';
const args = process.argv.slice(2);
// Anything else (--help, a typo of --check) must not rewrite the file.
if (args.includes('--help') || args.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
if (args.some((a) => a !== '--check')) {
  console.error(`module-map: unknown argument ${args.find((a) => a !== '--check')}\n${USAGE}`);
  process.exit(2);
}
const text = render();
const tableProblems = floorTableProblems();
for (const p of tableProblems) console.error(`docs/architecture.md, floor table: ${p}`);
if (args.includes('--check')) {
  const current = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
  if (current !== text)
    console.error(`${path.relative(process.cwd(), OUT)} is out of date: run node packages/cxr/scripts/module-map.js`);
  if (current !== text || tableProblems.length) process.exit(1);
  console.log(`${path.relative(process.cwd(), OUT)} is current`);
} else {
  fs.writeFileSync(OUT, text);
  console.log(`wrote ${path.relative(process.cwd(), OUT)}`);
  if (tableProblems.length) process.exit(1);
}
