// A model folder's files as every command reads them: a missing weights.bin or a corrupt cxr.json / model.json
// of an ensemble member is said naming the file and what to do (not a bare ENOENT or JSON parser message), a
// model.json whose weight manifest is not TF.js's is refused alike by every reader of it, and the temp folders a
// killed atomic write left (Ctrl-C during a checkpoint write) are swept by the next write.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine';
import { writeDirAtomic } from '../src/models/dir_swap';
import { fileLoader, loadModel, readWeightsManifest, saveLayersModel } from '../src/models/io';
import { listModelFiles } from '../src/serve/model_files';
import { checkMembers } from '../src/train/ensemble';
import { needsData, REPO } from './shared-data';

// The shipped model's members: plain model folders with their own cxr.json, no training needed.
const MEMBERS = path.join(REPO, 'models', 'default');
const skip = needsData(path.join(MEMBERS, 'm1', 'cxr.json'), path.join(MEMBERS, 'm2', 'cxr.json'));

function copyMember(tmp: string, name: string): string {
  const dir = path.join(tmp, name);
  fs.cpSync(path.join(MEMBERS, 'm1'), dir, { recursive: true });
  return dir;
}

test('a model folder without weights.bin is refused naming the file and what to do', { skip }, async () => {
  await initEngine();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-model-files-'));
  try {
    const dir = copyMember(tmp, 'm');
    fs.rmSync(path.join(dir, 'weights.bin'));
    const missing = /m: no weights\.bin, the weight file model\.json names \(the model folder is incomplete\): copy/;
    await assert.rejects(loadModel(dir), (e: Error) => {
      assert.match(e.message, missing);
      assert.doesNotMatch(e.message, /ENOENT/);
      return true;
    });
    // The ensemble's own check of its members reads the weights too.
    assert.throws(() => checkMembers([dir, path.join(MEMBERS, 'm2')]), missing);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("an ensemble member's corrupt cxr.json or model.json is named", { skip }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-model-files-'));
  try {
    const other = path.join(MEMBERS, 'm2');
    const meta = copyMember(tmp, 'bad-meta');
    fs.writeFileSync(path.join(meta, 'cxr.json'), '{"format": broken\n');
    assert.throws(() => checkMembers([meta, other]), /bad-meta\/cxr\.json: not valid JSON \(/);
    const model = copyMember(tmp, 'bad-model');
    fs.writeFileSync(path.join(model, 'model.json'), 'garbage\n');
    assert.throws(() => checkMembers([model, other]), /bad-model\/model\.json: not valid JSON \(/);
    // Valid JSON that is no model.json: named too, not a TypeError.
    fs.writeFileSync(path.join(model, 'model.json'), '{"weightsManifest": [{"paths": 5}]}\n');
    assert.throws(() => checkMembers([model, other]), /bad-model\/model\.json: not a TF\.js model\.json/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("a model.json whose weight manifest is not TF.js's is refused by every reader, naming the file", async () => {
  await initEngine();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-model-files-'));
  const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 1 })] });
  try {
    const [dir, other] = [path.join(tmp, 'm'), path.join(tmp, 'other')];
    for (const d of [dir, other]) {
      await saveLayersModel(model, d);
      fs.writeFileSync(path.join(d, 'cxr.json'), '{}\n');
    }
    const file = path.join(dir, 'model.json');
    const good = JSON.parse(fs.readFileSync(file, 'utf8'));
    const group = good.weightsManifest[0];
    const weight = group.weights[0];
    const named = /m\/model\.json: not a TF\.js model\.json \(/;
    const cases: [string, unknown, RegExp][] = [
      ['no manifest', undefined, /m\/model\.json: not a TF\.js model\.json \(it has no weightsManifest\): copy the/],
      ['a weight file that is no name', [{ ...group, paths: [5] }], /\(weightsManifest\.0\.paths\.0: .*string/],
      ['a weight without its shape', [{ ...group, weights: [{ ...weight, shape: undefined }] }], /weights\.0\.shape: /],
      ['a dtype TF.js has not', [{ ...group, weights: [{ ...weight, dtype: 'float64' }] }], /weights\.0\.dtype: /],
      [
        'a weight file outside the folder',
        [{ ...group, paths: ['../other/weights.bin'] }],
        /m\/model\.json names a weight file outside its folder: \.\.\/other\/weights\.bin: copy the model folder/,
      ],
    ];
    for (const [what, manifest, why] of cases) {
      fs.writeFileSync(file, JSON.stringify({ ...good, weightsManifest: manifest }));
      const said = (e: Error) => {
        assert.match(e.message, why, what);
        if (!what.includes('outside')) assert.match(e.message, named, what);
        return true;
      };
      await assert.rejects(tfl.loadLayersModel(fileLoader(dir)), said);
      assert.throws(() => readWeightsManifest(dir), said);
      assert.throws(() => checkMembers([dir, other]), said);
      // The files a browser is given to run the model itself (GET /model/...).
      assert.throws(() => listModelFiles(dir, { members: [] }), said);
    }
    fs.writeFileSync(file, JSON.stringify(good));
    assert.deepEqual(readWeightsManifest(dir), good.weightsManifest);
    assert.deepEqual([...listModelFiles(dir, { members: [] }).files.keys()], ['model.json', 'weights.bin']);
    (await tfl.loadLayersModel(fileLoader(dir))).dispose();
  } finally {
    model.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('an atomic write sweeps the temp folders killed writes of the same folder left, not live ones', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-model-files-'));
  try {
    const host = os.hostname().replace(/[^A-Za-z0-9_]/g, '_') || 'host';
    // A process that has ended: its pid is free (a reuse within this test is beyond chance).
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    const old = Date.now() / 1000 - 2 * 24 * 3600;
    const make = (name: string, mtime?: number) => {
      fs.mkdirSync(path.join(tmp, name, 'sub'), { recursive: true });
      fs.writeFileSync(path.join(tmp, name, 'sub', 'weights.bin'), 'x');
      if (mtime) fs.utimesSync(path.join(tmp, name), mtime, mtime);
    };
    const swept = [
      '.last.tmp-AbC123', // an earlier version's name (no host or pid)
      `.last.tmp-${host}-${gone}-xYz789`, // this machine, its process gone
      '.last.tmp-elsewhere-12345-Old000', // another machine's, a day old
    ];
    const kept = [
      `.last.tmp-${host}-${process.ppid}-Live00`, // a process still running here
      '.last.tmp-elsewhere-12345-New000', // another machine's, fresh: its writer may be at work
      '.best.tmp-AbC123', // another folder's
      '.last.tmp-AbC123.mine', // not of the pattern
    ];
    for (const name of swept) make(name, name.includes('Old') ? old : undefined);
    for (const name of kept) make(name);
    await writeDirAtomic(path.join(tmp, 'last'), (dir) => fs.writeFileSync(path.join(dir, 'state.json'), '{}'));
    assert.deepEqual(fs.readdirSync(tmp).sort(), [...kept, 'last'].sort());
    assert.equal(fs.readFileSync(path.join(tmp, 'last', 'state.json'), 'utf8'), '{}');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
