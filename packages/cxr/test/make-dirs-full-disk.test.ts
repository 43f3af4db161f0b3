// A full disk was reported in Node's own words, "ENOSPC: no space left on device, write", which name neither the
// disk nor the folder (make_dirs.ts writeFailure, which every writer's message takes its reason from). The ENOSPC
// here is the kernel's own: Linux's /dev/full refuses every write with it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { writeFailure } from '../src/make_dirs';

const skip = fs.existsSync('/dev/full') ? false : 'needs /dev/full (Linux) for a real ENOSPC';

function fullDiskError(): NodeJS.ErrnoException {
  try {
    fs.writeFileSync('/dev/full', 'x');
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
  throw new Error('/dev/full took a write');
}

test('a full disk is said in words, naming the folder on it', { skip }, () => {
  const e = fullDiskError();
  assert.equal(e.code, 'ENOSPC');
  assert.equal(writeFailure(e, '/data/runs/a'), 'the disk that holds /data/runs/a is full');
  // A write's error names no path: without a folder the words still say what is wrong, not "ENOSPC: ...".
  assert.equal(writeFailure(e), 'the disk is full');
  // A write through a hidden temp file names that file, gone once the write failed: its folder is said instead.
  const temp = Object.assign(e, { syscall: 'open', path: '/data/runs/a/.log.jsonl.tmp-123' });
  assert.equal(writeFailure(temp), 'the disk that holds /data/runs/a is full');
  // A mkdir's error names the folder it could not make: that folder is the one said.
  const mkdir = Object.assign(e, { syscall: 'mkdir', path: '/data/runs/b' });
  assert.equal(writeFailure(mkdir), 'the disk that holds /data/runs/b is full');
});
