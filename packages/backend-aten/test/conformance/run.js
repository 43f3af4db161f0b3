#!/usr/bin/env node
// Runs tfjs-core 4.22's own backend test suite (dist/tests.js) against the 'aten' backend.
// The npm package ships the tests as ESM without "type":"module", and they must share one
// tfjs-core instance with the backend and tfjs-backend-cpu, so everything is bundled from
// source into one CommonJS file and run under jasmine.
// Usage: node test/conformance/run.js [substring-of-spec-name]
'use strict';
const path = require('node:path');
const esbuild = require('esbuild');
const Jasmine = require('jasmine');

const pkg = path.join(__dirname, '..', '..');
const bundle = path.join(pkg, 'dist', 'conformance', 'bundle.js');
const denyList = require('./deny_list.json');
const grep = process.argv[2];

// The backend is bundled from src/, so native.ts's __dirname must still point at src/ for
// it to find build/Release/aten.node.
const virtual = {
  name: 'conformance',
  setup(build) {
    build.onResolve({ filter: /^conformance:/ }, (a) => ({ path: a.path, namespace: 'conformance' }));
    build.onLoad({ filter: /.*/, namespace: 'conformance' }, (a) => ({
      resolveDir: pkg,
      contents:
        a.path === 'conformance:env'
          ? // Must run before any *_test.js module calls describeWithFlags.
            `import {setTestEnvs} from '@tensorflow/tfjs-core/dist/jasmine_util';
           setTestEnvs([{name: 'aten', backendName: 'aten', flags: {}, isDataSync: true}]);`
          : // Gradients and chained ops are registered by the tfjs union package, not by tfjs-core.
            `import 'conformance:env'; import './src/index.ts';
           import '@tensorflow/tfjs-core/dist/register_all_gradients';
           import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
           import '@tensorflow/tfjs-core/dist/tests';`,
    }));
    build.onLoad({ filter: /[\\/]src[\\/]native\.ts$/ }, async (a) => ({
      loader: 'ts',
      contents: (await require('node:fs/promises').readFile(a.path, 'utf8')).replaceAll(
        '__dirname',
        JSON.stringify(path.dirname(a.path)),
      ),
    }));
  },
};

async function main() {
  const t0 = Date.now();
  await esbuild.build({
    entryPoints: ['conformance:main'],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: bundle,
    // One tfjs-core module for the backend, tfjs-backend-cpu and the tests.
    mainFields: ['module', 'main'],
    // tfjs-core's "sideEffects" list would otherwise drop the *_test.js modules.
    ignoreAnnotations: true,
    external: ['jasmine-core', 'jasmine'],
    plugins: [virtual],
    logLevel: 'error',
  });

  const jasmine = new Jasmine();
  jasmine.exitOnCompletion = false;
  jasmine.jasmine.DEFAULT_TIMEOUT_INTERVAL = 60000;
  const denied = new Map(denyList.map((d) => [d.spec, d.reason]));
  jasmine.env.configure({
    random: false,
    specFilter: (spec) => {
      const name = spec.getFullName();
      return !denied.has(name) && (grep == null || name.includes(grep));
    },
  });

  const counts = { passed: 0, failed: 0, skipped: 0 };
  const seenDenied = new Set();
  const durations = [];
  const report = (name, failed) => {
    console.log(`FAILED: ${name}`);
    for (const f of failed) {
      const stack = (f.stack || '')
        .split('\n')
        .filter((l) => /^\s+at /.test(l))
        .slice(0, 4);
      console.log(['  ' + f.message, ...stack].join('\n    '));
    }
  };
  jasmine.clearReporters();
  jasmine.addReporter({
    specDone(r) {
      durations.push([r.duration ?? 0, r.fullName]);
      if (r.status === 'passed') counts.passed++;
      else if (r.status === 'failed') {
        counts.failed++;
        report(r.fullName, r.failedExpectations);
      } else if (denied.has(r.fullName)) {
        counts.skipped++;
        seenDenied.add(r.fullName);
      } else if (r.status !== 'excluded') {
        // 'excluded' here only means filtered out by the argument
        counts.skipped++;
        if (process.env.CONFORMANCE_VERBOSE) console.log(`skipped (${r.status}): ${r.fullName}`);
      }
    },
    suiteDone(r) {
      // An error in beforeAll/afterAll belongs to no spec; count it so it cannot pass silently.
      if (r.failedExpectations.length) {
        counts.failed++;
        report(`${r.fullName} (suite)`, r.failedExpectations);
      }
    },
  });

  require(bundle);
  const result = await jasmine.execute();
  for (const f of result.failedExpectations ?? []) {
    counts.failed++;
    report('(top level)', [f]);
  }
  if (grep == null) {
    for (const name of denied.keys()) {
      if (!seenDenied.has(name)) console.log(`warning: deny-list entry matches no spec: ${name}`);
    }
  }
  if (process.env.CONFORMANCE_VERBOSE) {
    durations.sort((a, b) => b[0] - a[0]);
    for (const [ms, name] of durations.slice(0, 10)) console.log(`slow: ${ms} ms ${name}`);
  }
  console.log(`time: ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  console.log(
    `${counts.passed} passed, ${counts.failed} failed` + (counts.skipped ? `, ${counts.skipped} skipped` : ''),
  );
  process.exitCode = counts.failed > 0 || result.overallStatus === 'failed' ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
