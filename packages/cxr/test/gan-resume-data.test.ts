// `cxr gan train --resume` on other films than the GAN started on is refused (as `cxr train --resume` refuses
// them), a refused `cxr gan train` writes nothing to --out (so no config.json of it comes back with --resume),
// and --resume in a folder stopped before its first checkpoint says that training starts over.
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initEngine } from '../src/engine';
import { GanConfig, QUICK } from '../src/gan/config';
import { type GanTrainOptions, trainGan } from '../src/gan/train';
import { readRunLog } from './child-cli';
import { CHEST_XRAY, linkedTrainFilms, needsData } from './shared-data';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const skip = needsData();

/** `cxr gan train --data CHEST_XRAY --out OUT --quick --epochs 1 --check 0`, in this process; its lines in `lines`. */
const ganTrain = (out: string, o: Partial<GanTrainOptions> = {}, lines: string[] = []) =>
  trainGan({
    data: CHEST_XRAY,
    out,
    config: { ...QUICK, epochs: 1 },
    checkPerClass: 0,
    progress: false,
    log: (l) => lines.push(l),
    ...o,
  });

let tmp = '';
before(async () => {
  if (skip) return;
  await initEngine(1);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-gan-resume-data-'));
});

test('gan train --resume refuses other films than the GAN started on, and changes nothing', { skip }, async () => {
  const out = path.join(tmp, 'gan');
  const lines: string[] = [];
  await ganTrain(out, {}, lines);
  assert.match(lines.join('\n'), /; 1 epoch, batch/, 'one epoch is not "1 epochs"');
  const other = linkedTrainFilms(path.join(tmp, 'other'), 30);
  const before = ['gan.json', 'config.json', 'log.jsonl'].map((f) => fs.readFileSync(path.join(out, f), 'utf8'));
  await assert.rejects(ganTrain(out, { data: other, resume: true, config: { epochs: 2 } }), (e: Error) => {
    assert.match(e.message, /the data in .*other is not the data this GAN started on \(split fingerprint differs\)/);
    assert.match(e.message, new RegExp(`resume with --data ${CHEST_XRAY}`));
    return true;
  });
  const after = ['gan.json', 'config.json', 'log.jsonl'].map((f) => fs.readFileSync(path.join(out, f), 'utf8'));
  assert.deepEqual(after, before, 'the refused resume changed the GAN folder');
  assert.equal(readRunLog(out).filter((e) => e.kind === 'epoch').length, 1);
});

test('a refused gan train writes nothing; --resume after a stop before the first checkpoint says so', {
  skip,
}, async () => {
  const file = path.join(tmp, 'afile');
  fs.writeFileSync(file, '');
  const out = path.join(tmp, 'refused');
  await assert.rejects(ganTrain(out, { data: file }), /--data .*afile: is a file, not a folder \(give the folder/);
  await assert.rejects(ganTrain(out, { data: path.join(tmp, 'missing') }), /--data .*missing: no such folder$/);
  assert.equal(fs.existsSync(out), false, 'a refused gan train made its --out');

  // What a run killed while loading its data before this fix left, or one stopped before its first epoch ended.
  const early = path.join(tmp, 'early');
  fs.mkdirSync(early);
  fs.writeFileSync(path.join(early, 'config.json'), JSON.stringify(GanConfig.parse({ ...QUICK, epochs: 1 })));
  const lines: string[] = [];
  const r = await ganTrain(early, { resume: true, config: {} }, lines);
  assert.match(
    lines.join('\n'),
    /was stopped before its first checkpoint: training starts again with its saved config/,
  );
  assert.equal(r.epochs, 1);
});
