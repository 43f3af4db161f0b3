// Failure paths that once left something open: a worker refused its options kept its own queue's Redis
// connection (the process never exited), a failed close of the jobs skipped the port and the queue, and a throw
// while freeing the model's tensors left the decode pool's workers running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { closeInOrder } from '../src/cli/worker';
import { Predictor } from '../src/predict/predictor';
import { makeTinyModel, tempDir } from './serve-fixtures';

test('startWorker with concurrency 0 rejects before opening anything: the process exits on its own', () => {
  const child = `
    const { startWorker } = require(${JSON.stringify(path.join(__dirname, '../src/queue/worker.js'))});
    startWorker({ predictor: { model: { sha256: 'a'.repeat(64) } }, store: {}, log: () => {} },
      { redisUrl: 'redis://127.0.0.1:1', concurrency: 0 })
      .then(() => console.log('started'), (e) => console.log('rejected: ' + e.message));`;
  const r = spawnSync(process.execPath, ['-e', child], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(r.signal, null, `still running after 15 s: ${r.stdout}${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /rejected: startWorker: concurrency must be an integer >= 1, not 0/);
});

test('closeInOrder closes the port and the queue even when closing the jobs fails', async () => {
  const closed: string[] = [];
  const part = (name: string, fail = false) => ({
    close: async () => {
      closed.push(name);
      if (fail) throw new Error(`${name} would not close`);
    },
  });
  await assert.rejects(closeInOrder(part('jobs', true), part('port', true), part('queue')), /jobs would not close/);
  assert.deepEqual(closed, ['jobs', 'port', 'queue']);
});

test("a Predictor's dispose closes its decode pool even when freeing the tensors throws", async () => {
  const root = tempDir('worker-close-failures');
  try {
    const p = await Predictor.load(await makeTinyModel(path.join(root, 'model')));
    let poolClosed = false;
    const pool = {
      decode: () => Promise.reject(new Error('not used')),
      close: async () => {
        poolClosed = true;
      },
    };
    assert.equal(p.decodeIn(pool), true);
    // Reached through the private field: the throw stands for any failure inside disposeViews.
    const members = (p as unknown as { loaded: { members: { dispose(): void }[] } }).loaded.members;
    const dispose = members[0].dispose.bind(members[0]);
    members[0].dispose = () => {
      throw new Error('dispose failed');
    };
    assert.throws(() => p.dispose(), /dispose failed/);
    assert.equal(poolClosed, true);
    dispose();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
