// Small wording fixes, each as the user meets it: the report's "1 was a false alarm"; a missing and a
// not-a-folder --images (adapt) or --data (robustness) told apart, by the option; `cxr history --label` in any
// case, and a plain refusal of what is not a label; `cxr experiments heatmap --layers` naming the layers there are.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { register as registerAdapt } from '../src/cli/adapt';
import { register as registerHistory } from '../src/cli/history';
import { register as registerRobustness } from '../src/cli/robustness';
import { evaluate } from '../src/eval';
import { heatmapTable } from '../src/experiments/heatmap';
import { writeReport } from '../src/report/write_report';
import { makeSeededModel, tempDir } from './ood-fixtures';

const dir = tempDir('cli-wording');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function cxr(register: (p: Command) => void, ...args: string[]): Promise<void> {
  const program = new Command('cxr').exitOverride();
  register(program);
  await program.parseAsync(args, { from: 'user' });
}

test('the report says "1 was a false alarm", and "2 were false alarms"', async () => {
  const labels = [0, 0, 0, 1, 1];
  for (const [fp, words] of [
    [1, '1 was a false alarm.'],
    [2, '2 were false alarms.'],
  ] as const) {
    const run = path.join(dir, `run-${fp}`);
    fs.mkdirSync(path.join(run, 'metrics'), { recursive: true });
    const probs = [0.1, fp > 1 ? 0.8 : 0.2, 0.9, 0.7, 0.9];
    const m = evaluate(labels, probs, { threshold: 0.5 });
    assert.equal(m.confusion.fp, fp);
    fs.writeFileSync(path.join(run, 'metrics', 'test.json'), JSON.stringify(m));
    await writeReport(run);
    const html = fs.readFileSync(path.join(run, 'report', 'index.html'), 'utf8');
    assert.ok(html.includes(words), `${words} in the report`);
  }
});

test('adapt --images and robustness --data: no such folder, or a file, said by the option', async () => {
  const missing = path.join(dir, 'nope');
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, 'x');
  const out = path.join(dir, 'adapted');
  await assert.rejects(cxr(registerAdapt, 'adapt', '--images', missing, '--out', out), {
    message: `--images ${missing}: no such folder`,
  });
  await assert.rejects(cxr(registerAdapt, 'adapt', '--images', file, '--out', out), (e: Error) => {
    assert.match(e.message, new RegExp(`^--images ${file}: is a file, not a folder: give the folder of the films`));
    return true;
  });
  assert.ok(!fs.existsSync(out), 'nothing made for a refused run');
  await assert.rejects(cxr(registerRobustness, 'robustness', '--data', missing), {
    message: `--data ${missing}: no such folder`,
  });
  await assert.rejects(
    cxr(registerRobustness, 'robustness', '--data', file),
    /^Error: --data .*: is a file, not a folder/,
  );
});

test('history --label in any case; another word is refused plainly', async () => {
  const db = path.join(dir, 'none.db');
  // Options that pass: the missing log is the error.
  for (const label of ['pneumonia', 'Normal', 'PNEUMONIA'])
    await assert.rejects(cxr(registerHistory, 'history', '--db', db, '--label', label), /no audit log/);
  await assert.rejects(cxr(registerHistory, 'history', '--db', db, '--verdict', 'Assessed'), /no audit log/);
  await assert.rejects(cxr(registerHistory, 'history', '--db', db, '--label', 'viral'), (e: Error) => {
    assert.equal(e.message, 'history: --label: "viral" is not one of NORMAL, PNEUMONIA');
    return true;
  });
});

test('heatmap --layers with a layer the model lacks names the layers Grad-CAM can start at', async () => {
  const model = await makeSeededModel(path.join(dir, 'model'), { inputSize: 32, widths: [4, 8, 8, 8] });
  // Refused before any film is looked for: the data folder is never read.
  await assert.rejects(heatmapTable(model, { data: path.join(dir, 'no-data') }, { layers: ['nope'] }), (e: Error) => {
    assert.match(e.message, /^--layers nope: model '.*' has no layer 'nope'; Grad-CAM can start at last_conv, \w/);
    return true;
  });
  await assert.rejects(heatmapTable(model, { images: path.join(dir, 'nope') }), {
    message: `--images ${path.join(dir, 'nope')}: no such folder`,
  });
});
