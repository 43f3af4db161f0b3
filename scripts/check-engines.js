#!/usr/bin/env node
// Guard-rail: every installed package (transitive ones included) must accept the Node.js versions
// the root package.json claims in `engines.node`, and every workspace must claim the same range.
// A dependency that wants a newer Node than we claim fails at install (engine-strict) or, worse,
// at run time (e.g. an ESM-only module loaded with require() before Node 20.19/22.12).
//
// Checked versions: the lowest version of each even (LTS) major the claimed range admits, from
// its first major up to CHECK_ENGINES_MAX_MAJOR (default 24, the newest LTS line): for
// "^20.19.0 || >=22.12.0" that is 20.19.0, 22.12.0 and 24.0.0. The packages are package-lock.json's;
// optional ones that are not installed (for other platforms) are skipped.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const semver = require('semver');

const root = path.resolve(process.argv[2] ?? path.join(__dirname, '..'));
const maxMajor = Number(process.env.CHECK_ENGINES_MAX_MAJOR ?? 24);
const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));

const rootPkg = readJson(path.join(root, 'package.json'));
const claimed = rootPkg.engines?.node;
if (!claimed || !semver.validRange(claimed)) {
  console.error(`check-engines: package.json must set engines.node to a valid range (got ${JSON.stringify(claimed)})`);
  process.exit(1);
}

/** The lowest version of `major` the range admits, or null: each `||` alternative on its own. */
function lowestInMajor(range, major) {
  let best = null;
  for (const set of new semver.Range(range).set) {
    const part = set.map((c) => c.value || '*').join(' ');
    const sub = `${part} >=${major}.0.0 <${major + 1}.0.0-0`;
    if (!semver.validRange(sub)) continue;
    const v = semver.minVersion(sub);
    if (v && semver.satisfies(v, sub) && (!best || semver.lt(v, best))) best = v;
  }
  return best;
}

/** The lowest admitted version of each even major from the range's first major up to maxMajor. */
function points(range) {
  const out = [];
  const first = semver.minVersion(range);
  for (let major = first.major; major <= maxMajor; major++) {
    if (major % 2) continue;
    const v = lowestInMajor(range, major);
    if (v) out.push(v.version);
  }
  return out;
}

const versions = points(claimed);
const problems = [];

// Every workspace claims what the root claims.
for (const ws of rootPkg.workspaces ?? []) {
  const got = readJson(path.join(root, ws, 'package.json')).engines?.node;
  if (got !== claimed)
    problems.push(`${ws}/package.json: engines.node is ${JSON.stringify(got)}, the root claims "${claimed}"`);
}

const lock = readJson(path.join(root, 'package-lock.json'));
let checked = 0;
for (const [where, entry] of Object.entries(lock.packages ?? {})) {
  if (!where.includes('node_modules/') || entry.link) continue;
  const range = entry.engines?.node;
  if (!range || typeof range !== 'string') continue;
  // An optional package for another platform (sharp's, esbuild's) is not installed here.
  if (entry.optional && !fs.existsSync(path.join(root, where, 'package.json'))) continue;
  checked++;
  const name = where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length);
  if (!semver.validRange(range)) {
    problems.push(`${name}@${entry.version}: engines.node "${range}" is not a valid range`);
    continue;
  }
  const refused = versions.filter((v) => !semver.satisfies(v, range));
  if (refused.length) {
    const kind = entry.dev ? ' (dev)' : '';
    problems.push(`${name}@${entry.version}${kind}: engines.node "${range}" refuses Node ${refused.join(', ')}`);
  }
}

if (problems.length) {
  console.error(`check-engines: the claimed Node versions (${claimed}: ${versions.join(', ')}) are refused:`);
  for (const p of problems) console.error(`  ${p}`);
  console.error('Pin a version that accepts them (package.json or "overrides"), or change the claim.');
  process.exit(1);
}
console.log(`check-engines: ${checked} packages accept Node ${versions.join(', ')} (${claimed})`);
