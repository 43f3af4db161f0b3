// Review of models/ and cli/ (session 33): bugs found, each test failed before its fix.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeTinyModel, tempDir } from './serve-fixtures';
import { loadModel, modelIdentity, weightsDigest } from '../src/models/io';
import { ModelLoadError } from '../src/models/load_error';
import { backboneSpec, locateWeights } from '../src/models/backbones';
import { runEvaluation } from '../src/cli/evaluate_run';
import { CHEST_XRAY, needsData } from './shared-data';

let dir = '';
let modelDir = '';

before(async () => {
  dir = tempDir('models-review-s33');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: a model.json edited by hand, as a damaged copy would be.
type ModelJson = Record<string, any>;

/** A copy of the tiny model whose model.json `edit` changed. */
function withModelJson(name: string, edit: (json: ModelJson) => void): string {
  const d = path.join(dir, name);
  fs.cpSync(modelDir, d, { recursive: true });
  const file = path.join(d, 'model.json');
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(json);
  fs.writeFileSync(file, JSON.stringify(json));
  return d;
}

test('a model.json TF.js refuses is a ModelLoadError naming the file and what to do, in one line', async () => {
  const weights = (j: ModelJson) => j.weightsManifest[0].weights;
  const cases: Array<[string, (j: ModelJson) => void, RegExp]> = [
    // Was "Cannot read properties of null (reading 'model_config')".
    ['null-topology', (j) => (j.modelTopology = null), /model_config/],
    // Was "Shape mismatch: [3,3,1,24] vs. [216]".
    [
      'flat-shape',
      (j) => (weights(j)[0].shape = [weights(j)[0].shape.reduce((a: number, b: number) => a * b)]),
      /Shape mismatch/,
    ],
    // Was "Provided weight data has no target variable: zzz".
    ['renamed-weight', (j) => (weights(j)[0].name = 'zzz'), /no target variable: zzz/],
    // Was "Unknown layer: Foo. This may be due to one of the following reasons:\n1. ..." (many lines).
    ['unknown-layer', (j) => (j.modelTopology.class_name = 'Foo'), /Unknown layer: Foo/],
  ];
  for (const [name, edit, said] of cases) {
    const d = withModelJson(name, edit);
    await assert.rejects(loadModel(d), (e: Error) => {
      assert.ok(e instanceof ModelLoadError, `${name}: ${e.name}`);
      assert.equal(e.code, 'BAD_WEIGHTS', name);
      assert.ok(e.message.startsWith(`${path.join(d, 'model.json')}: not a model TF.js can load (`), e.message);
      assert.match(e.message, said);
      assert.match(e.message, /: copy the model folder again$/);
      assert.ok(!e.message.includes('\n'), e.message);
      return true;
    });
  }
});

test("a damaged model folder's own messages are kept as they were (not named twice)", async () => {
  const d = path.join(dir, 'cut');
  fs.cpSync(modelDir, d, { recursive: true });
  const w = path.join(d, 'weights.bin');
  fs.truncateSync(w, fs.statSync(w).size - 8);
  await assert.rejects(loadModel(d), (e: Error) => {
    assert.ok(e instanceof ModelLoadError);
    assert.ok(e.message.startsWith(`${d}: the weight files hold `), e.message);
    assert.doesNotMatch(e.message, /TF\.js can load/);
    return true;
  });
  // A folder named './x' is named 'x/model.json' once joined: still its own message, not wrapped.
  const cutJson = withModelJson('cut-json', () => {});
  fs.writeFileSync(path.join(cutJson, 'model.json'), '{"modelTopology": {');
  const dotted = `./${path.relative(process.cwd(), cutJson)}`;
  await assert.rejects(loadModel(dotted), (e: Error) => {
    assert.ok(e.message.startsWith(`${path.join(dotted, 'model.json')}: not valid JSON`), e.message);
    assert.doesNotMatch(e.message, /TF\.js can load/);
    return true;
  });
});

test('a Keras .h5 given by its path is checked by size and md5 as the canonical file is (was taken unchecked)', () => {
  const spec = backboneSpec('inception_v3');
  assert.ok(spec.weights.format === 'keras-h5' && spec.weights.bytes && spec.weights.md5);
  const cut = path.join(dir, 'inception_v3_notop_renamed.h5');
  fs.writeFileSync(cut, Buffer.alloc(1024, 7));
  assert.throws(() => locateWeights(spec, cut), /inception_v3: .*renamed\.h5 is 1024 bytes, expected 87910968/);
  // The folder form was already checked: the same words for the same file.
  const folder = path.join(dir, 'h5-folder');
  fs.mkdirSync(folder);
  fs.copyFileSync(cut, path.join(folder, spec.weights.file));
  assert.throws(() => locateWeights(spec, folder), /is 1024 bytes, expected 87910968/);
});

test('a cxr.json whose member leaves the model folder, or is named twice, is refused as a bad cxr.json', async () => {
  // Each loaded: the other folder's model as this one's, or one member counted twice.
  const outside = await makeTinyModel(path.join(dir, 'outside'));
  const meta = JSON.parse(fs.readFileSync(path.join(modelDir, 'cxr.json'), 'utf8'));
  for (const [name, members] of [
    ['up', ['../outside']],
    ['up-nested', ['m1/../../outside']],
    ['absolute', [outside]],
    ['empty', ['']],
    // Counted twice in the mean logit.
    ['twice', ['a', './a/']],
  ] as const) {
    const d = path.join(dir, `members-${name}`);
    fs.cpSync(modelDir, d, { recursive: true });
    fs.cpSync(modelDir, path.join(d, 'a'), { recursive: true });
    fs.writeFileSync(path.join(d, 'cxr.json'), JSON.stringify({ ...meta, members }));
    await assert.rejects(loadModel(d), (e: Error) => {
      assert.ok(e instanceof ModelLoadError, `${name}: ${e.name}`);
      assert.equal(e.code, 'BAD_CONFIG', `${name}: ${e.message}`);
      assert.match(e.message, /not a valid cxr\.json: .*members/s);
      return true;
    });
  }
  // Sub-folders, nested ones too, still load.
  const d = path.join(dir, 'members-ok');
  for (const m of ['a', path.join('b', 'c')]) fs.cpSync(modelDir, path.join(d, m), { recursive: true });
  fs.writeFileSync(path.join(d, 'cxr.json'), JSON.stringify({ ...meta, members: ['a', 'b/c'] }));
  const loaded = await loadModel(d);
  assert.equal(loaded.members.length, 2);
  for (const m of loaded.members) m.dispose();
});

test('cxr serve refuses a number option given as \'\' or in hex (--port "$PORT", PORT unset: any port)', () => {
  const main = path.join(__dirname, '..', 'src', 'cli', 'main.js');
  const db = path.join(dir, 'serve-options.db');
  const withoutServices = { ...process.env };
  for (const k of ['CXR_API_TOKEN', 'CXR_API_TOKENS', 'CXR_REDIS_URL', 'CXR_ORTHANC_URL', 'CXR_DB_WAIT']) {
    delete withoutServices[k];
  }
  for (const [option, value] of [
    ['--port', ''],
    ['--port', '0x1f90'],
    ['--db-wait', ' '],
  ]) {
    // Before, each of these started a server (on any free port, on 8080, with no wait): the run is cut at 20 s.
    const r = spawnSync(
      process.execPath,
      [main, 'serve', '--model', modelDir, '--db', db, '--port', '0', option, value],
      {
        encoding: 'utf8',
        timeout: 20_000,
        env: withoutServices,
      },
    );
    assert.equal(r.status, 1, `${option} '${value}': ${r.signal ?? ''} ${r.stderr.slice(0, 300)}`);
    // Read as every command reads its numbers (cli/args.ts): the option, the value and what it takes.
    assert.match(r.stderr, new RegExp(`^error: option '${option} <[a-z]+>' argument '${value}' is invalid`));
    assert.equal(r.stdout, '');
  }
});

test("a model's identity covers the weight files its model.json names, not only a weights.bin", async () => {
  // A folder whose manifest names its own shard (a converted model): loaded from that shard, but hashed without it.
  const sharded = (name: string, flip: boolean) => {
    const d = withModelJson(name, (j) => (j.weightsManifest[0].paths = ['group1-shard1of1']));
    const shard = path.join(d, 'group1-shard1of1');
    fs.renameSync(path.join(d, 'weights.bin'), shard);
    if (flip) {
      const b = fs.readFileSync(shard);
      b[100] ^= 0x40;
      fs.writeFileSync(shard, b);
    }
    return d;
  };
  const a = sharded('shard-a', false);
  const b = sharded('shard-b', true);
  const [la, lb] = [await loadModel(a), await loadModel(b)];
  for (const m of [...la.members, ...lb.members]) m.dispose();
  assert.notEqual(la.sha256, lb.sha256, 'two models with other weights had one sha256');
  assert.notEqual(weightsDigest(a), weightsDigest(b));
  // A folder cxr writes (weights.bin) keeps the identity it had: model.json, weights.bin, cxr.json, in order.
  const crypto = await import('node:crypto');
  const inner = crypto.createHash('sha256');
  for (const f of ['model.json', 'weights.bin', 'cxr.json']) inner.update(fs.readFileSync(path.join(modelDir, f)));
  const outer = crypto.createHash('sha256').update(inner.digest('hex'));
  outer.update(fs.readFileSync(path.join(modelDir, 'cxr.json')));
  assert.equal(modelIdentity(modelDir).sha256, outer.digest('hex'));
  const w = crypto.createHash('sha256');
  for (const f of ['model.json', 'weights.bin']) w.update(fs.readFileSync(path.join(modelDir, f)));
  assert.equal(weightsDigest(modelDir), w.digest('hex'));
});

test("cxr evaluate refuses an operating point the model does not have, Object's own names too", {
  skip: needsData(CHEST_XRAY),
}, async () => {
  const data = path.join(CHEST_XRAY, 'val');
  for (const name of ['toString', '__proto__', 'constructor']) {
    // Was scored at threshold 0.5 and reported as operating point 'toString'.
    await assert.rejects(
      runEvaluation({ modelDir, data, operatingPoint: name, warn: () => {} }),
      new RegExp(`model has no operating point '${name}' \\(has: screening, balanced\\)`),
    );
  }
});

test("cxr train refuses a recipe name that is Object's, not a preset's (it trained the defaults)", () => {
  const main = path.join(__dirname, '..', 'src', 'cli', 'main.js');
  const out = path.join(dir, 'train-toString');
  for (const name of ['toString', 'constructor']) {
    const r = spawnSync(process.execPath, [main, 'train', '--data', dir, '--out', out, '--recipe', name], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 1, r.stderr.slice(0, 300));
    assert.match(
      r.stderr,
      new RegExp(`option '--recipe <name>' argument '${name}' is invalid\\. unknown recipe \\(known: `),
    );
    assert.equal(r.stdout, '');
    assert.ok(!fs.existsSync(out), 'nothing is written for a refused option');
  }
});

test('a cxr.json whose default operating point is none of its points is refused at load', async () => {
  // It loaded, and every prediction that named no point was then refused as the caller's mistake.
  const meta = JSON.parse(fs.readFileSync(path.join(modelDir, 'cxr.json'), 'utf8'));
  for (const name of ['Balanced', 'toString']) {
    const d = path.join(dir, `default-${name}`);
    fs.cpSync(modelDir, d, { recursive: true });
    fs.writeFileSync(path.join(d, 'cxr.json'), JSON.stringify({ ...meta, defaultOperatingPoint: name }));
    await assert.rejects(loadModel(d), (e: Error) => {
      assert.ok(e instanceof ModelLoadError, e.name);
      assert.equal(e.code, 'BAD_CONFIG', e.message);
      assert.match(
        e.message,
        new RegExp(`defaultOperatingPoint '${name}' is none of its operatingPoints \\(screening, balanced\\)`),
      );
      return true;
    });
  }
});
