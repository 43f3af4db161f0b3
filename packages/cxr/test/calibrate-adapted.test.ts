// `cxr calibrate` on a model `cxr adapt` wrote chose new thresholds on the source model's validation films under
// the site's batch-norm statistics, silently undoing the adaptation's prior shift, while cxr.json
// (`adaptation.prior.logitShift`) and the model card still described it. It is refused, before anything is read
// or written, saying to calibrate the source model and adapt again.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { register } from '../src/cli/calibrate';
import type { ModelMeta } from '../src/models/metadata';
import { makeSeededModel, tempDir } from './ood-fixtures';

const dir = tempDir('calibrate-adapted');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function calibrate(...args: string[]): Promise<void> {
  const program = new Command('cxr').exitOverride();
  register(program);
  await program.parseAsync(['calibrate', ...args], { from: 'user' });
}

const adaptation: NonNullable<ModelMeta['adaptation']> = {
  method: ['adabn', 'prior'],
  films: { used: 40, rejected: 0, unreadable: 0 },
  fingerprint: 'f'.repeat(64),
  date: '2026-01-01T00:00:00Z',
  source: { name: 'source-model', version: '1.2.0', sha256: 'e'.repeat(64) },
  bnLayers: 4,
  prior: {
    train: 0.74,
    trainFrom: 'validation',
    site: 0.5,
    logitShift: -0.404,
    thresholdsBefore: { screening: 0.105, balanced: 0.197 },
  },
};

test('calibrate refuses an adapted model and leaves its cxr.json as it was', async () => {
  const model = await makeSeededModel(path.join(dir, 'site'), { inputSize: 32, widths: [4, 8, 8, 8] });
  const file = path.join(model, 'cxr.json');
  fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), adaptation }, null, 2));
  const before = fs.readFileSync(file, 'utf8');
  // No data is needed to refuse it: the refusal comes before the validation split is looked for.
  await assert.rejects(
    calibrate('--model', model, '--data', path.join(dir, 'no-data'), '--threads', '1'),
    (e: Error) => {
      assert.match(e.message, /is a model adapted to a site by cxr adapt \(from source-model 1\.2\.0, /);
      assert.match(e.message, /thresholds moved by -0\.404 in logit/);
      assert.match(e.message, /would undo the adaptation/);
      assert.match(e.message, /Calibrate the source model .*then adapt it again \(cxr adapt .* --prior\)$/);
      return true;
    },
  );
  assert.equal(fs.readFileSync(file, 'utf8'), before);
});
