#!/usr/bin/env node
// Builds the N-API addon against the system Node headers and Debian's libtorch.
// Serialised with a lock file so that parallel builds (tests, helpers) never share a half-written build dir.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
if (!fs.existsSync('/usr/include/ATen/ATen.h')) {
  console.error(
    "backend-aten: libtorch headers not found (/usr/include/ATen). Install Debian's libtorch-dev: apt-get install libtorch-dev",
  );
  process.exit(1);
}
// node-gyp: the checkout's (a dev install), else the one npm bundles and names in
// npm_config_node_gyp while it runs install scripts (a production install, `npm ci --omit=dev`).
function findGyp() {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    const bundled = process.env.npm_config_node_gyp;
    if (bundled && fs.existsSync(bundled)) return bundled;
    console.error('backend-aten: node-gyp not found: run this through npm (npm run build:native) or install node-gyp');
    process.exit(1);
  }
}
const gyp = findGyp();
const haveBuild = fs.existsSync(path.join(root, 'build', 'Makefile'));
const args = haveBuild ? ['build'] : ['rebuild'];
args.push(`--jobs=${process.env.ATEN_BUILD_JOBS || require('node:os').availableParallelism()}`, '--nodedir=/usr');
const lock = '/tmp/backend-aten-build.lock';
const r = spawnSync('flock', [lock, process.execPath, gyp, ...args], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
