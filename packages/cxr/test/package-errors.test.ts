// The errors a program embedding cxr branches on, as it gets them from the package entry: Predictor.load's model
// failures were a ModelLoadError with a code, but runEvaluation (and every other caller of loadModel) threw a plain
// Error for the same folder; a data folder that cannot be scanned had no code; the audit log's and the queue's
// error classes, which docs/api.md names, were not exported at all; readSource refused a JPEG with a plain Error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel, tempDir, XRAY_JPEG } from './serve-fixtures';
import { imageElements, writeDicom } from './dicom-writer';

const repo = path.resolve(__dirname, '..', '..', '..', '..');
// biome-ignore lint/suspicious/noExplicitAny: read by name, as a JavaScript program reads the package.
const cxr = (): any => require(require.resolve('@cxr/app', { paths: [repo] }));

let dir = '';
let modelDir = '';

before(async () => {
  dir = tempDir('package-errors');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A copy of the tiny model, damaged by `harm`. */
function damaged(name: string, harm: (d: string) => void): string {
  const d = path.join(dir, name);
  fs.cpSync(modelDir, d, { recursive: true });
  harm(d);
  return d;
}

test('the error classes a program branches on are exported by the package entry', () => {
  const api = cxr();
  for (const name of [
    'ModelLoadError',
    'DatasetLayoutError',
    'AuditStoreOpenError',
    'AuditCloseError',
    'QueueUnavailableError',
    'InputError',
    'UploadStore',
  ]) {
    assert.equal(typeof api[name], 'function', name);
  }
});

test('runEvaluation and loadModel refuse a bad model with a coded ModelLoadError, as Predictor.load', async () => {
  const { ModelLoadError, loadModel, runEvaluation, Predictor } = cxr();
  const weights = (d: string) => path.join(d, 'weights.bin');
  const cases: Array<[string, string]> = [
    [path.join(dir, 'no-such-model'), 'NOT_FOUND'],
    [damaged('no-meta', (d) => fs.rmSync(path.join(d, 'cxr.json'))), 'NOT_A_MODEL'],
    [damaged('bad-meta', (d) => fs.writeFileSync(path.join(d, 'cxr.json'), '{"name": ')), 'BAD_CONFIG'],
    [damaged('cut-weights', (d) => fs.truncateSync(weights(d), fs.statSync(weights(d)).size - 100)), 'BAD_WEIGHTS'],
  ];
  for (const [model, code] of cases) {
    for (const [what, run] of [
      ['runEvaluation', () => runEvaluation({ modelDir: model, data: dir })],
      ['loadModel', () => loadModel(model)],
      ['Predictor.load', () => Predictor.load(model, { warmUp: false })],
    ] as const) {
      await assert.rejects(run(), (e: Error & { code?: string; dir?: string }) => {
        assert.ok(e instanceof ModelLoadError, `${what} ${code}: ${e.name}: ${e.message}`);
        assert.equal(e.code, code, `${what}: ${e.message}`);
        assert.equal(e.dir, model);
        return true;
      });
    }
  }
});

test('a data folder that cannot be scanned is a DatasetLayoutError with a code', async () => {
  const { DatasetLayoutError, runEvaluation } = cxr();
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, 'x');
  const empty = path.join(dir, 'empty');
  fs.mkdirSync(empty);
  for (const [data, code] of [
    [path.join(dir, 'no-such-data'), 'NOT_FOUND'],
    [file, 'NOT_A_FOLDER'],
    [empty, 'NO_LAYOUT'],
  ]) {
    await assert.rejects(runEvaluation({ modelDir, data }), (e: Error & { code?: string }) => {
      assert.ok(e instanceof DatasetLayoutError, `${data}: ${e.name}: ${e.message}`);
      assert.equal(e.code, code, e.message);
      return true;
    });
  }
});

test('readSource refuses a JPEG, and a DICOM without the UIDs a result needs, with a SourceError and its code', () => {
  const { readSource, SourceError } = cxr();
  const refusedWith = (code: string) => (e: Error & { code?: string }) => {
    assert.ok(e instanceof SourceError, `${e.name}: ${e.message}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
  assert.throws(() => readSource(fs.readFileSync(XRAY_JPEG)), refusedWith('NOT_DICOM'));
  const noUids = writeDicom(imageElements({ rows: 4, columns: 4, pixels: new Uint16Array(16) }));
  assert.throws(() => readSource(noUids), refusedWith('BAD_IDENTITY'));
});
