// A small disk for the tests of what the audit log does when it is full: an 8 MB tmpfs mounted over a folder
// (which needs root), and a file written until no room is left.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

/** A small tmpfs at `mnt` (root with mount rights only), or why not. */
export function mountTmpfs(mnt: string): string | null {
  if (process.getuid?.() !== 0) return 'needs root to mount a small file system';
  fs.mkdirSync(mnt, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt], { encoding: 'utf8' });
  return r.status === 0 ? null : `cannot mount a tmpfs here: ${r.stderr.trim()}`;
}

/** Writes `file` in `blockBytes` writes until the disk is full (the write that failed said ENOSPC). */
export function fillDisk(file: string, blockBytes: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    const block = Buffer.alloc(blockBytes);
    for (;;) fs.writeSync(fd, block);
  } catch (e) {
    assert.equal((e as { code?: string }).code, 'ENOSPC');
  } finally {
    fs.closeSync(fd);
  }
}
