// --threads above the machine's cores is said on stderr (the threads contend: a run took minutes instead of
// seconds), and taken as given; within the cores nothing is said.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import { initEngine } from '../src/engine';

async function stderrOf(f: () => Promise<void>): Promise<string> {
  const write = process.stderr.write.bind(process.stderr);
  let out = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    await f();
  } finally {
    process.stderr.write = write;
  }
  return out;
}

test('--threads over the cores is noted, within them nothing is', async () => {
  const cores = os.availableParallelism();
  const over = await stderrOf(() => initEngine(cores * 8));
  assert.match(over, new RegExp(`--threads ${cores * 8} is more than this machine's ${cores} cores`));
  assert.equal(await stderrOf(() => initEngine(cores)), '');
});
