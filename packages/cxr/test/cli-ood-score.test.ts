// `cxr ood score FILE...` on files that are not films: each gets its own `error` line in words (a missing file is
// "no such file", not the raw ENOENT text; a folder is not a regular file; an over-size file is refused before it
// is read, as `cxr predict` refuses one), the other files are still scored, and the command exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_LIMITS } from '../src/data/decode';
import { makeTinyModel, tempDir } from './serve-fixtures';
import { CHEST_XRAY, needsData } from './shared-data';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const FILM = path.join(CHEST_XRAY, 'val', 'NORMAL', 'NORMAL2-IM-1427-0001.jpeg');

test('ood score: a file it cannot read is an error line in words; the others are scored', {
  skip: needsData(FILM),
}, async () => {
  const dir = tempDir('cli-ood-score');
  try {
    const model = await makeTinyModel(path.join(dir, 'model'));
    const missing = path.join(dir, 'gone.jpg');
    const big = path.join(dir, 'big.jpg');
    // Sparse: the size is what is refused, before any byte is read.
    fs.closeSync(fs.openSync(big, 'w'));
    fs.truncateSync(big, DEFAULT_LIMITS.maxInputBytes + 1);
    const r = spawnSync(process.execPath, [CLI, 'ood', 'score', '--model', model, missing, dir, big, FILM], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    assert.deepEqual(lines[0], [missing, 'error', 'no such file']);
    assert.deepEqual(lines[1], [dir, 'error', 'not a regular file']);
    assert.equal(lines[2][0], big);
    assert.equal(lines[2][1], 'error');
    assert.match(lines[2][2], /exceeds the \d+-byte input limit/);
    assert.equal(lines[3][0], FILM);
    assert.notEqual(lines[3][1], 'error', lines[3].join(' '));
    assert.equal(lines.length, 4);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
