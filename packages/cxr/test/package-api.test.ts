// The package as programs and shells use it: `import { Predictor } from '@cxr/app'` through the
// package's `exports`, its type declarations, and the linked `cxr` command.
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { makeTinyModel, tempDir } from './serve-fixtures';
import { compileConsumer, STRICT_NODE16 } from './package-consumer';
import { spawnAsync } from './spawn-async';

const pkgDir = path.resolve(__dirname, '..', '..');
const repo = path.resolve(pkgDir, '..', '..');

/** What a program gets from `import ... from '@cxr/app'`, resolved by name as one in this workspace would. */
// biome-ignore lint/suspicious/noExplicitAny: the test reads the exports by name, as a JavaScript program would.
const packageApi = (): any => require(require.resolve('@cxr/app', { paths: [repo] }));

/**
 * A TypeScript program using @cxr/app as docs/api.md and src/index.ts describe it: the server with its token
 * options, the audit log, and the option and result types of each entry point. It only has to compile.
 */
const CONSUMER = `
import {
  auditRecordOf, buildApp, defaultDbPath, InputError, openAuditStore, Predictor, runBatch, runEvaluation,
  runTraining, shownLabel, startServer,
  type AppOptions, type AuditRecord, type AuditStore, type BatchOptions, type BatchResult, type EvaluateRunOptions,
  type EvaluationResult, type InputErrorCode, type OodPolicy, type Prediction, type PredictOptions,
  type PredictorOptions, type RunningServer, type RunOptions, type ServerOptions, type TrainResult, type Verdict,
  type VerdictReasonCode, type VerdictStatus,
} from '@cxr/app';

declare const batch: BatchOptions;
declare const training: RunOptions;
declare const evaluation: EvaluateRunOptions;

export async function main(dir: string, bytes: Uint8Array): Promise<void> {
  const policy: OodPolicy = 'refuse';
  const options: PredictorOptions = { oodPolicy: policy, warmUp: false };
  const predictor = await Predictor.load(dir, options);
  const asked: PredictOptions = { patientAge: 4, heatmap: false };
  try {
    const p: Prediction = await predictor.predict(bytes, asked);
    const label: 'NORMAL' | 'PNEUMONIA' | null = p.label;
    const verdict: Verdict = p.verdict;
    const status: VerdictStatus = verdict.status;
    const code: VerdictReasonCode | undefined = verdict.reasons[0]?.code;
    console.log(label, status, code);
  } catch (e) {
    if (e instanceof InputError) {
      const code: InputErrorCode = e.code;
      console.log(code);
    }
  }
  const store: AuditStore = await openAuditStore(defaultDbPath(), { readonly: true });
  const rows: AuditRecord[] = (await store.list({ verdict: 'cannot-assess', limit: 10 })).items;
  console.log(rows.map((r) => shownLabel(r)), auditRecordOf);
  const serverOptions: ServerOptions = {
    host: '127.0.0.1',
    port: 0,
    dbPath: ':memory:',
    loadPredictor: () => Predictor.load(dir),
    apiToken: 'a-token-of-16-chars',
    tokens: [{ name: 'ward', token: 'another-token-16' }],
  };
  const server: RunningServer = await startServer(serverOptions);
  const appOptions: AppOptions = { predictor, audit: store, apiToken: 'a-token-of-16-chars' };
  await (await buildApp(appOptions)).close();
  await server.close();
  const b: BatchResult = await runBatch(batch);
  const t: TrainResult = await runTraining(training);
  const m: EvaluationResult = await runEvaluation(evaluation);
  console.log(b, t, m);
}
`;

/**
 * A program that builds DICOM results as docs/api.md shows, and asserts at compile time that the types it gets are
 * not `any` (dcmjs ships no types: the package's own declarations of it must travel with dist), and that the
 * error classes carry their codes.
 */
const STRICT_CONSUMER = `
import {
  buildResults, ModelLoadError, Predictor, PredictorDisposedError, readSource,
  type ModelLoadErrorCode, type SourceImage,
} from '@cxr/app';

type IsAny<T> = 0 extends 1 & T ? true : false;
type Source = Parameters<typeof buildResults>[0]['source'];
const sourceIsTyped: IsAny<Source> = false;
const studyIsTyped: IsAny<Source['patientStudy']> = false;
const readIsTyped: IsAny<ReturnType<typeof readSource>> = false;

export async function main(dir: string, dicom: Uint8Array): Promise<void> {
  const source: SourceImage = readSource(dicom);
  try {
    const predictor = await Predictor.load(dir, { warmUp: false });
    predictor.dispose();
  } catch (e) {
    if (e instanceof ModelLoadError) {
      const code: ModelLoadErrorCode = e.code;
      console.log(code, e.dir);
    } else if (e instanceof PredictorDisposedError) {
      const code: 'PREDICTOR_DISPOSED' = e.code;
      console.log(code);
    }
  }
  console.log(source, sourceIsTyped, studyIsTyped, readIsTyped);
}
`;

// Two of these run tsc and one the linked command, each a process of its own: side by side, the file takes about
// the time of the longest. Each works in its own temp folder.
describe('@cxr/app as an installed package', { concurrency: true }, () => {
  test('the package root exports the library API, with types', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
    assert.equal(pkg.name, '@cxr/app');
    assert.ok(fs.existsSync(path.join(pkgDir, pkg.main)), `main ${pkg.main} exists`);
    assert.ok(fs.existsSync(path.join(pkgDir, pkg.types)), `types ${pkg.types} exist`);
    // Resolved by name, as a program in this workspace (or one that installed the package) would.
    const api = packageApi();
    for (const name of [
      'Predictor',
      'startServer',
      'buildApp',
      'openAuditStore',
      'defaultDbPath',
      'auditRecordOf',
      'shownLabel',
      'loadModel',
      'runBatch',
      'runEvaluation',
      'runTraining',
      'runRobustness',
      'adaptModel',
      'initEngine',
      'buildResults',
      'readSource',
      'ModelLoadError',
      'PredictorDisposedError',
      'openQueue',
      'enqueueFile',
      'startWorker',
    ]) {
      assert.equal(typeof api[name], 'function', name);
    }
    assert.equal(typeof api.Predictor.load, 'function');
  });

  test('a TypeScript program compiles against the exported types (docs/api.md and src/index.ts name them)', {
    timeout: 240_000,
  }, async () => {
    // The program sits outside the package and finds it as an installed one would: node_modules/@cxr/app.
    const r = await compileConsumer('package-consumer', 'consumer.ts', CONSUMER, STRICT_NODE16);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });

  test('the emitted declarations are self-contained: a strict program compiles against them without skipLibCheck', {
    timeout: 240_000,
  }, async () => {
    const dir = tempDir('package-strict-consumer');
    try {
      fs.symlinkSync(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
      fs.writeFileSync(path.join(dir, 'consumer.ts'), STRICT_CONSUMER);
      const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
      const r = await spawnAsync(
        process.execPath,
        [
          tsc,
          '--noEmit',
          '--strict',
          '--skipLibCheck',
          'false',
          '--pretty',
          'false',
          '--module',
          'node16',
          '--target',
          'es2022',
          'consumer.ts',
        ],
        { cwd: dir, encoding: 'utf8', timeout: 180_000 },
      );
      assert.ok(r.status !== null, `tsc ended by ${r.signal ?? r.error}`);
      // Other packages' own declarations (TF.js's) fail strict checks by themselves: the package answers for its
      // own files (dist, and src/dicom_out/dcmjs.d.ts that dist refers to) and the program's.
      const ours = `${r.stdout}${r.stderr}`
        .split('\n')
        .filter((line) => /^\S.*\(\d+,\d+\): error TS\d+/.test(line))
        .filter(
          (line) => !path.resolve(dir, line.slice(0, line.indexOf('('))).startsWith(path.join(repo, 'node_modules')),
        );
      assert.deepEqual(ours, [], `${r.stdout}${r.stderr}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a program's prediction, logged with auditRecordOf, is read back by openAuditStore (label rule)", async () => {
    const api = packageApi();
    const dir = tempDir('package-audit');
    const predictor = await api.Predictor.load(await makeTinyModel(path.join(dir, 'model')), { warmUp: false });
    try {
      const png = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } })
        .png()
        .toBuffer();
      const p = await predictor.predict(png);
      assert.equal(p.label, null);
      const db = path.join(dir, 'audit.db');
      const writer = await api.openAuditStore(db);
      const model = predictor.model;
      await writer.insert(api.auditRecordOf(p, { model, latencyMs: 1, requestedBy: null }), null);
      await writer.close();
      const reader = await api.openAuditStore(db, { readonly: true });
      try {
        const [row] = (await reader.list({ limit: 5 })).items;
        assert.equal(row.input.sha256, p.input.sha256);
        assert.equal(row.verdict.status, 'cannot-assess');
        assert.match(row.label, /^(NORMAL|PNEUMONIA)$/, "the log keeps the model's label");
        assert.equal(api.shownLabel(row), null, 'shown as none, as the API and cxr history show it');
      } finally {
        await reader.close();
      }
    } finally {
      predictor.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the linked cxr command is executable and lists its commands', async () => {
    const bin = path.join(repo, 'node_modules', '.bin', 'cxr');
    assert.ok(fs.existsSync(bin), 'node_modules/.bin/cxr after npm ci');
    const r = await spawnAsync(bin, ['--help']);
    assert.equal(r.status, 0, r.stderr); // as execFileSync threw on any other
    const help = r.stdout;
    for (const cmd of ['predict', 'serve', 'train', 'robustness', 'adapt', 'orthanc'])
      assert.match(help, new RegExp(`\\b${cmd}\\b`));
  });
});
