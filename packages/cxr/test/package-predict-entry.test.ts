// `@cxr/app/predict`, the lighter entry for a program that only predicts (src/predict_entry.ts): the full entry
// loads every floor up front, the server (fastify), the audit log's drivers (pg, better-sqlite3) and the queue
// (bullmq, ioredis) included, about 0.7 s on an idle machine and seconds on a busy one, for a program that never
// uses them. Each program runs in a child process of its own, with a fresh require.cache, and finds the package by
// name, as an installed one would.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel, tempDir, XRAY_JPEG } from './serve-fixtures';
import { compileConsumer } from './package-consumer';
import { spawnAsync } from './spawn-async';

const repo = path.resolve(__dirname, '..', '..', '..', '..');
/** Packages only the server, the audit log, the queue or the command line need. */
const HEAVY = ['pg', 'better-sqlite3', 'fastify', '@fastify/multipart', 'bullmq', 'ioredis', 'prom-client', 'pino'];

/** Runs `program` (CommonJS, or an ES module) in a fresh Node; returns what it printed last, as JSON. */
async function run(program: string, esm = false): Promise<unknown> {
  const args = esm ? ['--input-type=module', '-e', program] : ['-e', program];
  const r = await spawnAsync(process.execPath, args, { cwd: repo, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '');
}

/** A child program's function listing the packages in its require.cache, sorted. */
const LOADED_PACKAGES = `
const loadedPackages = () => {
  const pkgs = new Set();
  for (const f of Object.keys(require.cache)) {
    const i = f.lastIndexOf('/node_modules/');
    if (i < 0) continue;
    const [a, b] = f.slice(i + 14).split('/');
    pkgs.add(a.startsWith('@') ? a + '/' + b : a);
  }
  return [...pkgs].sort();
};`;
/** The packages in require.cache, printed as the child's last line. */
const PRINT_PACKAGES = `${LOADED_PACKAGES}
console.log(JSON.stringify(loadedPackages()));`;

let dir = '';
let modelDir = '';
const skip = fs.existsSync(XRAY_JPEG) ? false : `no sample film (${XRAY_JPEG})`;

before(async () => {
  if (skip) return;
  dir = tempDir('package-predict-entry');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('a program that predicts through @cxr/app/predict loads neither the server, the audit log nor the queue', {
  skip,
}, async () => {
  const program = (entry: string) => `
const fs = require('node:fs');
const { InputError, ModelLoadError, Predictor } = require(${JSON.stringify(entry)});
(async () => {
  const predictor = await Predictor.load(${JSON.stringify(modelDir)}, { warmUp: false });
  const p = await predictor.predict(fs.readFileSync(${JSON.stringify(XRAY_JPEG)}));
  await predictor.predict(new Uint8Array(8)).catch((e) => { if (!(e instanceof InputError)) throw e; });
  predictor.dispose();
  if (typeof p.probability !== 'number' || typeof ModelLoadError !== 'function') throw new Error('no prediction');
  ${PRINT_PACKAGES}
})().catch((e) => { console.error(e); process.exit(1); });`;
  // The two programs side by side: each is a fresh Node of its own.
  const [light, full] = (await Promise.all([run(program('@cxr/app/predict')), run(program('@cxr/app'))])) as [
    string[],
    string[],
  ];
  assert.ok(light.includes('@tensorflow/tfjs-core'), `the engine predicts: ${light.join(' ')}`);
  assert.deepEqual(
    HEAVY.filter((p) => light.includes(p)),
    [],
    'a predictor-only program loaded these',
  );
  // What the light entry spares: the full one loads them (else this test would prove nothing).
  assert.deepEqual(
    HEAVY.filter((p) => full.includes(p)),
    HEAVY,
  );
});

test('every value of @cxr/app/predict is the same object from @cxr/app, by require() and by import', async () => {
  const check = (load: string) => `${load}
const names = Object.keys(light).filter((n) => n !== 'default' && n !== '__esModule').sort();
const differ = names.filter((n) => light[n] === undefined || light[n] !== full[n]);
console.log(JSON.stringify({ names, differ }));`;
  const [cjs, esm] = (await Promise.all([
    run(check(`const light = require('@cxr/app/predict'); const full = require('@cxr/app');`)),
    run(check(`import * as light from '@cxr/app/predict'; import * as full from '@cxr/app';`), true),
  ])) as [{ names: string[]; differ: string[] }, unknown];
  assert.ok(['Predictor', 'InputError', 'createDecodePool', 'runBatch'].every((n) => cjs.names.includes(n)));
  assert.deepEqual(cjs.differ, []);
  assert.deepEqual(esm, cjs, 'import gives the same names as require()');
});

/** The program the entry's types are checked with: the Predictor, its errors and the answer's types by name. */
const TYPED_PROGRAM = `import {
  AGE_SOURCES, createDecodePool, InputError, Predictor,
  type AnswerAge, type InputErrorCode, type Prediction,
} from '@cxr/app/predict';
import { openAuditStore } from '@cxr/app';
type IsAny<T> = 0 extends 1 & T ? true : false;
const named: IsAny<AnswerAge> = false;
export async function main(dir: string, bytes: Uint8Array): Promise<number> {
  const predictor = await Predictor.load(dir);
  // The predictor closes the pool with dispose() once it took it.
  if (!predictor.decodeIn(createDecodePool())) throw new Error('the predictor has a decoder already');
  try {
    const p: Prediction = await predictor.predict(bytes);
    const age: AnswerAge | null | undefined = p.age;
    const source: (typeof AGE_SOURCES)[number] | undefined = age?.source;
    console.log(named, source, typeof openAuditStore);
    return p.probability;
  } catch (e) {
    if (e instanceof InputError) {
      const code: InputErrorCode = e.code;
      console.log(code);
    }
    return Number.NaN;
  } finally {
    predictor.dispose();
  }
}
`;

// The two tsc runs, each a process of its own, side by side.
describe("the entry's types", { concurrency: true }, () => {
  // node16 (and bundler) read the package's `exports`; node10, still many a CommonJS program's setting, reads only
  // `types` and `typesVersions`, which must map the subpath without losing the full entry's types.
  for (const resolution of [
    ['--module', 'node16'],
    ['--module', 'commonjs', '--moduleResolution', 'node10'],
  ]) {
    test(`a strict TypeScript program (${resolution.join(' ')}) names the Predictor and its types`, async () => {
      const r = await compileConsumer('package-predict-entry-types', 'program.ts', TYPED_PROGRAM, [
        '--noEmit',
        '--strict',
        '--skipLibCheck',
        ...resolution,
        '--target',
        'es2022',
      ]);
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    });
  }
});

/** Packages only the command line uses: progress bars, argument parsing, the log's pretty printer, the page build. */
const CLI_ONLY = ['cli-progress', 'commander', 'pino-pretty', 'esbuild'];

test('@cxr/app/predict loads no package of the command line; a progress bar still shows on a terminal', async () => {
  const r = (await run(`${LOADED_PACKAGES}
const entry = require('@cxr/app/predict');
if (typeof entry.runBatch !== 'function') throw new Error('no runBatch');
const atLoad = loadedPackages();
const cliModules = Object.keys(require.cache).filter((f) => f.includes('/dist/src/cli/'));
// What runBatch shows on a terminal: the bar loads its package then, and works.
const { startProgress } = require('./packages/cxr/dist/src/data/progress.js');
const bar = startProgress('predict', 2, true);
bar.tick();
bar.stop();
console.log(JSON.stringify({ atLoad, cliModules, afterBar: loadedPackages() }));`)) as {
    atLoad: string[];
    cliModules: string[];
    afterBar: string[];
  };
  assert.ok(r.atLoad.includes('@tensorflow/tfjs-core'), `the engine is loaded: ${r.atLoad.join(' ')}`);
  assert.deepEqual(
    CLI_ONLY.filter((p) => r.atLoad.includes(p)),
    [],
    'the library entry loaded these command-line packages',
  );
  assert.deepEqual(r.cliModules, [], 'the library entry loaded modules of src/cli');
  assert.ok(r.afterBar.includes('cli-progress'), 'a progress bar shown loads cli-progress');
});
