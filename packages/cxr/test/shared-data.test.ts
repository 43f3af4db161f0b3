// needsData: runs a test when its data is there, and skips it with a reason naming what is missing.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { CHEST_XRAY, needsData, REPO } from './shared-data';

test('needsData is false when every folder exists, else names the first missing one', () => {
  const here = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-shared-'));
  const missing = path.join(here, 'nope');
  try {
    assert.equal(needsData(here), false);
    assert.equal(needsData(here, REPO), false);
    const reason = needsData(here, missing, path.join(here, 'also-missing'));
    assert.equal(typeof reason, 'string');
    assert.match(reason as string, /needs \.\.\/shared data/);
    assert.ok((reason as string).includes(missing) && !(reason as string).includes('also-missing'), String(reason));
  } finally {
    fs.rmSync(here, { recursive: true, force: true });
  }
});

test('needsData with no argument checks the chest_xray folder', () => {
  assert.equal(needsData(), needsData(CHEST_XRAY));
  assert.ok(fs.existsSync(path.join(REPO, 'packages', 'cxr')), `REPO is the repository root: ${REPO}`);
});
