// `cxr orthanc sync --queue` wrote a line per film it skipped (every SR and SC the workers store comes back through
// the change feed as a skipped "cxr result"), which buried the rest of the log. It now counts them: one summary line
// per --batch films of a poll ("so far in this poll") and per poll, the skipped by reason; --verbose gives the line
// per film back (queued, already queued or done, skipped). Orthanc and Redis from scripts/stack.sh.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startModelStack, stopModelStack } from './queue-stack';
import { CLI, DICOM_FILE } from './serve-fixtures';
import { orthanc, type Stack, stackUnavailable } from './stack-fixture';

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let modelDir = '';

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('ops-s31-sync', ['orthanc', 'redis']));
});
after(async () => {
  await stopModelStack({ stack, dir });
});

function sync(state: string, ...extra: string[]) {
  return spawnSync(
    process.execPath,
    [CLI, 'orthanc', 'sync', '--queue', '--once', '--since-start', '--batch', '2', '--state', state, ...extra],
    { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...stack!.env, CXR_MODEL: modelDir } },
  );
}

test('sync --queue: summary lines per batch and per poll, skips counted by reason; --verbose a line per film', {
  skip: skip ?? false,
  timeout: 300_000,
}, async () => {
  const chest = await orthanc(stack!, '/instances', {
    method: 'POST',
    body: new Uint8Array(fs.readFileSync(DICOM_FILE)),
  });
  assert.equal(chest.status, 200, await chest.text());
  // Three instances that are no chest film (an MR series): each skipped for its modality.
  for (let i = 0; i < 3; i++) {
    const res = await orthanc(stack!, '/tools/create-dicom', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ Tags: { Modality: 'MR', PatientID: `ops-s31-${i}`, PatientName: 'Ops^S31' } }),
    });
    assert.equal(res.status, 200, await res.text());
  }

  const quiet = sync(path.join(dir, 'quiet.json'));
  assert.equal(quiet.status, 0, quiet.stderr);
  const lines = quiet.stderr.split('\n').filter((l) => l.trim());
  assert.deepEqual(
    lines.filter((l) => /^cxr orthanc: skip /.test(l)),
    [],
    `no line per skipped film:\n${quiet.stderr}`,
  );
  // 4 films in batches of 2: two "so far" lines, then the poll's.
  const soFar = lines.filter((l) => /so far in this poll: 2 new instances: /.test(l));
  assert.equal(soFar.length, 2, quiet.stderr);
  const poll = lines.filter((l) => /^cxr orthanc: 4 new instances: /.test(l));
  assert.equal(poll.length, 1, quiet.stderr);
  assert.match(poll[0], /1 queued, 0 already queued or done, 3 skipped \(3: [^;)]*MR[^;)]* is not CR, DX, DR or RG\)/);
  assert.match(poll[0], /0 failed \(cursor at change \d+\)$/);

  const verbose = sync(path.join(dir, 'verbose.json'), '--verbose');
  assert.equal(verbose.status, 0, verbose.stderr);
  assert.equal((verbose.stderr.match(/^cxr orthanc: skip \S+: .*is not CR, DX, DR or RG$/gm) ?? []).length, 3);
  assert.equal((verbose.stderr.match(/^cxr orthanc: already-queued \S+/gm) ?? []).length, 1, verbose.stderr);
});
