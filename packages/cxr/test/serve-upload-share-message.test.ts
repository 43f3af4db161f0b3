// The 503 for one client address over its share of the upload budget names the amount it holds and the limit
// with as many decimals as it takes to tell them apart: at one decimal, 80 parallel uploads of a 2.2 MB film
// read "this client's uploads in progress hold 95.9 MiB, over the 95.9 MiB one client address may have".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heldOverLimit } from '../src/serve/upload_watch';

const MiB = 2 ** 20;

test('held and limit read apart however close they are, and the held amount reads as the larger', () => {
  // The QA report's case: a budget share of 95.9 MiB, passed by part of one more upload.
  const limit = Math.round(95.9 * MiB);
  for (const over of [1, 100, 1024, 50 * 1024, 200 * 1024, 2 * MiB]) {
    const [held, max] = heldOverLimit(limit + over, limit);
    assert.notEqual(held, max, `${over} bytes over`);
    assert.ok(Number.parseFloat(held) > Number.parseFloat(max), `${held} over ${max}`);
  }
  // Far apart: one decimal, as before.
  assert.deepEqual(heldOverLimit(100 * MiB, 95.9 * MiB), ['100.0 MiB', '95.9 MiB']);
  // Close: one more decimal, then more.
  assert.deepEqual(heldOverLimit(95.94 * MiB, 95.92 * MiB), ['95.94 MiB', '95.92 MiB']);
  // A few bytes apart: the bytes themselves.
  assert.deepEqual(heldOverLimit(limit + 1, limit), [`${limit + 1} bytes`, `${limit} bytes`]);
});
