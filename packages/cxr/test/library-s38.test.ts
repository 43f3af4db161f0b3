// The package as a hospital's programmer meets it (README "As a library", docs/library.md): programs that find
// @cxr/app by name, as an installed one would, in a process of their own.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel, tempDir } from './serve-fixtures';
import { spawnAsync } from './spawn-async';

const pkgDir = path.resolve(__dirname, '..', '..');
const repo = path.resolve(pkgDir, '..', '..');
const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');

/** A program that only predicts, as docs/library.md writes one: the light entry and its types. */
const PREDICT_ONLY = `
import * as fs from 'node:fs';
import { InputError, Predictor, type Prediction, type VerdictStatus } from '@cxr/app/predict';

export async function main(modelDir: string, film: string): Promise<string> {
  const predictor = await Predictor.load(modelDir);
  try {
    const p: Prediction = await predictor.predict(fs.readFileSync(film), { heatmap: true });
    const status: VerdictStatus = p.verdict.status;
    return \`\${status} \${p.label ?? '-'} \${p.probability} \${p.heatmapPng?.length ?? 0}\`;
  } catch (e) {
    if (e instanceof InputError) return e.code;
    throw e;
  } finally {
    predictor.dispose();
  }
}
`;

// Each test is a program of its own (tsc, or a fresh node): they run side by side, in their own temp folders.
describe('@cxr/app in programs of their own', { concurrency: true }, () => {
  test('a strict program (nodenext, types ["node"]) using @cxr/app/predict compiles without skipLibCheck', async () => {
    // The light entry's declarations reached TensorFlow.js's (engine.d.ts kept `import '@tensorflow/tfjs-layers'`,
    // decode_input.d.ts took ImageFacts through explain/ood.d.ts, which re-exports from models/io.d.ts), whose own
    // declarations have 17 errors under `strict` with `types` set: a program that only predicts had to turn off
    // checking of every library's declarations to compile.
    const tmp = tempDir('library-s38-types');
    try {
      fs.symlinkSync(path.join(repo, 'node_modules'), path.join(tmp, 'node_modules'), 'dir');
      fs.writeFileSync(path.join(tmp, 'package.json'), '{"type": "module"}\n');
      fs.writeFileSync(path.join(tmp, 'program.ts'), PREDICT_ONLY);
      const tsconfig = { compilerOptions: { module: 'nodenext', target: 'es2022', strict: true, types: ['node'] } };
      fs.writeFileSync(path.join(tmp, 'tsconfig.json'), JSON.stringify({ ...tsconfig, files: ['program.ts'] }));
      const options = { cwd: tmp, encoding: 'utf8', timeout: 120_000 } as const;
      const r = await spawnAsync(process.execPath, [tsc, '-p', '.', '--noEmit'], options);
      const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
      assert.equal(r.status, 0, `${errors.length} errors, the first:\n${errors.slice(0, 3).join('\n')}`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('a decode worker thread (createDecodePool, startServer) loads no TensorFlow.js', async () => {
    // decode_input.ts took two image-check helpers through explain/ood, which imports models/io: every worker of the
    // pool loaded tfjs-core, tfjs-layers and ml-matrix (about 19 MB of heap and 0.2-0.4 s each) to decode films.
    const workerFile = path.join(pkgDir, 'dist', 'src', 'serve', 'decode_worker.js');
    const inWorker = `
      require(${JSON.stringify(workerFile)});
      require('node:worker_threads').parentPort.postMessage({ loaded: Object.keys(require.cache) });`;
    const program = `
      const { Worker } = require('node:worker_threads');
      const w = new Worker(${JSON.stringify(inWorker)}, { eval: true });
      w.on('message', (m) => {
        if (!m.loaded) return;
        console.log(JSON.stringify(m.loaded.filter((f) => /tfjs|backend-aten|ml-matrix/.test(f))));
        void w.terminate();
      });`;
    const r = await spawnAsync(process.execPath, ['-e', program], { cwd: repo, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const heavy = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? 'null') as string[];
    assert.deepEqual(heavy, [], `the decode worker loaded:\n${heavy.join('\n')}`);
  });

  test('Predictor.load of a relative path that is not there names the folder it looked in', async () => {
    // README's example loads 'models/default', which holds only from the checkout's root: run from a program's own
    // folder it said "models/default: no such folder", not where it had looked.
    const tmp = tempDir('library-s38-relative');
    try {
      const program = `
        const { Predictor, ModelLoadError } = require('@cxr/app/predict');
        Predictor.load('models/default').then(
          () => console.log('loaded?'),
          (e) => console.log(JSON.stringify({ model: e instanceof ModelLoadError, code: e.code, message: e.message })),
        );`;
      const env = { ...process.env, NODE_PATH: path.join(repo, 'node_modules') };
      const r = await spawnAsync(process.execPath, ['-e', program], {
        cwd: tmp,
        env,
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(r.status, 0, r.stderr);
      const said = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? 'null');
      assert.equal(said.model, true, r.stdout);
      assert.equal(said.code, 'NOT_FOUND');
      const where = path.join(fs.realpathSync(tmp), 'models', 'default');
      assert.ok(said.message.includes(where), `names ${where}: ${said.message}`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('startServer in a program: createLogger from the package sets its log level and where its lines go', {
    timeout: 240_000,
  }, async () => {
    // ServerOptions.log takes a Logger, and the package exported the type but no way to make one: a program that
    // wanted the server's start-up and request lines at another level, or in its own log, had to depend on pino.
    const tmp = tempDir('library-s38-logger');
    try {
      const modelDir = await makeTinyModel(path.join(tmp, 'model'));
      const program = `
        const { createLogger, Predictor, startServer } = require('@cxr/app');
        const lines = [];
        (async () => {
          const quiet = createLogger({ level: 'warn' });
          const mine = createLogger({ level: 'info', destination: { write: (line) => lines.push(JSON.parse(line)) } });
          for (const log of [quiet, mine]) {
            const server = await startServer({
              host: '127.0.0.1', port: 0, dbPath: ${JSON.stringify(path.join(tmp, 'audit.db'))}, log, decodeWorkers: 0,
              loadPredictor: () => Predictor.load(${JSON.stringify(modelDir)}, { warmUp: false }),
            });
            const health = await fetch(server.url + '/api/v1/health');
            if (health.status !== 200) throw new Error('health ' + health.status);
            await server.close();
          }
          console.log(JSON.stringify(lines.map((l) => l.level)));
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const r = await spawnAsync(process.execPath, ['-e', program], {
        cwd: repo,
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
      assert.ok(!/"level":"info"/.test(r.stderr), `nothing under warn on stderr:\n${r.stderr.slice(0, 2000)}`);
      const levels = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '[]') as string[];
      assert.ok(levels.filter((l) => l === 'info').length >= 3, `the program's own lines: ${levels}`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test("startServer says what limits a program's model (no not-a-chest-X-ray gate), as `cxr serve` does", async () => {
    // `cxr serve` logs Predictor.notes at warn; startServer given a program's Predictor logged none of them, so a
    // model without ood.json answered every upload without its gate and the program's log never said so.
    const tmp = tempDir('library-s38-notes');
    try {
      const modelDir = await makeTinyModel(path.join(tmp, 'model')); // no ood.json: the gate is off
      const program = `
        const { createLogger, Predictor, startServer } = require('@cxr/app');
        const lines = [];
        (async () => {
          const log = createLogger({ level: 'warn', destination: { write: (line) => lines.push(JSON.parse(line)) } });
          const server = await startServer({
            host: '127.0.0.1', port: 0, dbPath: ${JSON.stringify(path.join(tmp, 'audit.db'))}, log, decodeWorkers: 0,
            loadPredictor: () => Predictor.load(${JSON.stringify(modelDir)}, { warmUp: false }),
          });
          await server.close();
          console.log(JSON.stringify(lines));
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const r = await spawnAsync(process.execPath, ['-e', program], { cwd: repo, encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
      const lines = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '[]') as { level: string; msg: string }[];
      const gate = lines.find((l) => /no ood\.json/.test(l.msg));
      assert.ok(gate, `a line about the missing gate: ${JSON.stringify(lines)}`);
      assert.equal(gate.level, 'warn');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
