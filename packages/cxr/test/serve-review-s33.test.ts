// Serve review (session 33): what the audit log, the routes and the engine got wrong, each test failing before
// its fix.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openAuditStore } from '../src/serve/audit';
import { auditRecord, tempDir } from './serve-fixtures';
import { fillDisk, mountTmpfs } from './small-disk';

test('an SQLite audit log closes on a full disk: its checkpoint fails, its rows stay in the -wal, nothing thrown', {
  timeout: 60_000,
}, async (t) => {
  const dir = tempDir('serve-review-s33-full');
  const mnt = path.join(dir, 'small-disk');
  const why = mountTmpfs(mnt);
  if (why) {
    fs.rmSync(dir, { recursive: true, force: true });
    return t.skip(why);
  }
  try {
    const file = path.join(mnt, 'audit.db');
    const store = await openAuditStore(file);
    // Committed rows in the write-ahead log, which a checkpoint would copy into the file (and grow it).
    for (let n = 0; n < 20; n++) await store.insert(auditRecord(n), { heatmapPng: Buffer.alloc(20_000, n) });
    fillDisk(path.join(mnt, 'filler'), 4096);
    // Was: the checkpoint's SQLITE_FULL thrown, the connection left open (a server's shutdown failed, exit 1).
    await store.close();
    fs.rmSync(path.join(mnt, 'filler'));
    const again = await openAuditStore(file);
    try {
      assert.equal(await again.count(), 20, 'the rows of the -wal are read at the next open');
    } finally {
      await again.close();
    }
  } finally {
    spawnSync('umount', ['-l', mnt]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
