// `cxr orthanc sync --since-start` sets the saved cursor back to 0 (pacs/sync.ts startCursor). Left in a service
// unit, each restart would read the whole change feed again and throw the progress away, silently: said instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { OrthancClient } from '../src/pacs/client';
import { readState, writeState } from '../src/pacs/state';
import { syncOnce } from '../src/pacs/sync';

const URL = 'http://orthanc.example:8042';
const client = {
  config: { url: URL },
  changes: async () => ({ Changes: [], Last: 0, Done: true }),
} as unknown as OrthancClient;

async function run(stateFile: string): Promise<string[]> {
  const lines: string[] = [];
  await syncOnce({
    client,
    stateFile,
    sinceStart: true,
    handleInstance: async () => 'skipped',
    log: (l) => lines.push(l),
  });
  return lines;
}

test('--since-start over a state file that had progressed says what it throws away', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-since-start-'));
  try {
    const stateFile = path.join(dir, 'st.json');
    assert.doesNotMatch((await run(stateFile)).join('\n'), /had reached/, 'a first run has nothing to lose');
    writeState(stateFile, URL, 276);
    const lines = (await run(stateFile)).join('\n');
    assert.match(lines, /had reached change 276; it is set back to 0/);
    assert.match(lines, /Restart without --since-start/);
    assert.equal(readState(stateFile)?.last, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
