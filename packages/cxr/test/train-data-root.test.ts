// cxr.json records the data folder as an absolute path, whatever --data was typed as, so that the commands that
// default to "the recorded data folder" (ood fit, adapt-reference, ensemble) find it from another directory; a
// relative root recorded by an older model is named where it is not found, with the hint to pass --data.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initEngine } from '../src/engine';
import { modelAndDataRoot, readMeta } from '../src/models/io';
import { EnsembleRefused, membersDataRoot } from '../src/train/ensemble_members';
import { runTraining } from '../src/train/run';
import { CHEST_XRAY, needsData } from './shared-data';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const skip = needsData();

test('a run given a relative --data records it as an absolute path, found from any directory', { skip }, async () => {
  await initEngine(1);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-data-root-'));
  const out = path.join(tmp, 'run');
  const typed = path.relative(process.cwd(), CHEST_XRAY);
  assert.ok(!path.isAbsolute(typed), typed);
  await runTraining({
    data: typed,
    out,
    overrides: { arch: 'reference', inputSize: 32, epochs: 1, limitPerClass: 20, batchSize: 16, tta: [] },
    report: false,
    progress: false,
    gate: false,
    log: () => {},
  });
  assert.equal(readMeta(out).data.root, path.resolve(CHEST_XRAY));
  // What `cxr ood fit --model RUN` and `cxr adapt-reference --model RUN` do without --data, elsewhere.
  const cwd = process.cwd();
  try {
    process.chdir(tmp);
    assert.deepEqual(modelAndDataRoot(out), { dir: out, root: path.resolve(CHEST_XRAY) });
  } finally {
    process.chdir(cwd);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("an ensemble's recorded data folder: --data first, else the members' where it is, else named", () => {
  const here = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-data-root-'));
  const recorded = (root?: string) => ({ data: { root } });
  assert.equal(membersDataRoot(recorded('anything'), '/given'), '/given');
  assert.equal(membersDataRoot(recorded(here), undefined), here);
  assert.throws(
    () => membersDataRoot(recorded('../shared/data/no-such-folder'), undefined),
    (e) =>
      e instanceof EnsembleRefused &&
      e.message.includes('../shared/data/no-such-folder, relative to the directory the member was trained in') &&
      e.message.includes(path.resolve('../shared/data/no-such-folder')) &&
      /: pass --data \(the folder holding train\/\)$/.test(e.message),
  );
  assert.throws(
    () => membersDataRoot(recorded(path.join(here, 'gone')), undefined),
    new RegExp(`recorded data folder is not here \\(${path.join(here, 'gone')}\\): pass --data`),
  );
  assert.throws(
    () => membersDataRoot(recorded(undefined), undefined),
    /the members record no data folder: pass --data/,
  );
  fs.rmSync(here, { recursive: true, force: true });
});
