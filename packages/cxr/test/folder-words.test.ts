// Folders and what is said about them: a folder swapped in by writeDirAtomic (checkpoints, a GAN's generator,
// a whole ensemble) gets the mode a plain mkdir gives, not mkdtemp's 0700, so that `cxr serve` running as another
// user can read it; a missing --data or --model folder and a file in its place are told apart from a folder
// without the expected layout; a checkpoint's cut-short model.json says what to do, as its other files do.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanDataset } from '../src/data/dataset';
import { inspectDataset } from '../src/data/inspect';
import { initEngine } from '../src/engine';
import { writeDirAtomic } from '../src/models/dir_swap';
import { loadModel, readMeta } from '../src/models/io';
import { restoreCheckpoint, saveCheckpoint } from '../src/train/checkpoint';
import { ADAM_STATE, adamModel } from './adam-checkpoint';

const tmpDir = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `cxr-${name}-`));
const modeOf = (p: string) => fs.statSync(p).mode & 0o777;

test('a folder written by writeDirAtomic has the mode a plain mkdir gives it, under any umask', async () => {
  const root = tmpDir('dir-mode');
  const old = process.umask();
  try {
    for (const mask of [0o022, 0o027, 0o002]) {
      process.umask(mask);
      const plain = path.join(root, `plain-${mask}`);
      fs.mkdirSync(plain);
      const written = path.join(root, `written-${mask}`);
      await writeDirAtomic(written, (tmp) => fs.writeFileSync(path.join(tmp, 'a.txt'), 'a'));
      assert.equal(modeOf(written).toString(8), modeOf(plain).toString(8), `umask ${mask.toString(8)}`);
      // Written again over the old one: the swapped-in folder is a new one, with the same mode.
      await writeDirAtomic(written, (tmp) => fs.writeFileSync(path.join(tmp, 'b.txt'), 'b'));
      assert.equal(modeOf(written), modeOf(plain));
      assert.deepEqual(fs.readdirSync(written), ['b.txt']);
    }
    // Only the folder itself is left beside it: no temp folders.
    assert.equal(fs.readdirSync(root).filter((e) => e.startsWith('.')).length, 0);
  } finally {
    process.umask(old);
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a missing data folder and a file given as one are said as such, naming --data', async () => {
  const root = tmpDir('data-words');
  try {
    const file = path.join(root, 'afile');
    fs.writeFileSync(file, '');
    const quiet = { warn: () => {} };
    await assert.rejects(scanDataset(path.join(root, 'nope'), quiet), (e: Error) => {
      assert.equal(e.message, `--data ${path.join(root, 'nope')}: no such folder`);
      return true;
    });
    await assert.rejects(
      scanDataset(file, quiet),
      new RegExp(`--data ${file}: is a file, not a folder \\(give the folder holding train/`),
    );
    // A command that takes the root as an argument says it without the option.
    await assert.rejects(scanDataset(file, { ...quiet, option: '' }), new RegExp(`${file}: is a file, not a folder`));
    // `cxr data inspect ROOT` takes it as an argument: the message names the folder alone.
    await assert.rejects(inspectDataset(path.join(root, 'nope')), (e: Error) => {
      assert.equal(e.message, `${path.join(root, 'nope')}: no such folder`);
      return true;
    });
    // A folder without the layout is still told what layout is expected.
    await assert.rejects(scanDataset(root, quiet), /no chest_xray layout found/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a missing --model folder is "no such folder", a folder without cxr.json is no model folder', async () => {
  const root = tmpDir('model-words');
  try {
    const missing = path.join(root, 'nope');
    assert.throws(() => readMeta(missing), new RegExp(`${missing}: no such folder$`));
    await assert.rejects(loadModel(missing), /nope: no such folder$/);
    const file = path.join(root, 'afile');
    fs.writeFileSync(file, '');
    assert.throws(() => readMeta(file), /afile: is a file, not a folder \(give the model folder holding cxr\.json\)/);
    assert.throws(() => readMeta(root), /: no cxr\.json \(not a cxr model folder\)$/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("a checkpoint's cut-short model.json says to delete the checkpoint, as its optimizer.json does", async () => {
  await initEngine();
  const root = tmpDir('ckpt-model-json');
  try {
    const saved = await adamModel();
    const dir = path.join(root, 'checkpoints', 'last');
    await saveCheckpoint(dir, saved.model, saved.optimizer, ADAM_STATE);
    const text = fs.readFileSync(path.join(dir, 'model.json'), 'utf8');
    fs.writeFileSync(path.join(dir, 'model.json'), text.slice(0, text.length / 2));
    const m = await adamModel();
    await assert.rejects(restoreCheckpoint(dir, m.model, m.optimizer), (e: Error) => {
      assert.match(e.message, /model\.json: not valid JSON \(/);
      assert.match(e.message, new RegExp(`delete the folder ${dir} to start the run again .*--resume`));
      return true;
    });
    saved.model.dispose();
    m.model.dispose();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
