// `cxr history --since` and `cxr history prune --before` refuse what is not a date by saying what a date
// is here (not zod's "Invalid input → at since"), and before the audit log is opened. That the API reads
// the same forms the same way is test/history-times.test.ts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { register } from '../src/cli/history';
import { tempDir } from './ood-fixtures';

async function history(...args: string[]): Promise<void> {
  const program = new Command('cxr').exitOverride();
  register(program);
  await program.parseAsync(['history', ...args], { from: 'user' });
}

const EXPECTED = /is not a date \(2026-11-01, its first moment in UTC\) or a date and time with its zone \(/;
// A log that does not exist: a date refused is refused before the log is looked for.
const dir = tempDir('history-dates');
const db = path.join(dir, 'none.db');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('--since that is not a date names the option, what was given and what is expected', async () => {
  for (const since of ['yesterday', '2026-13-01', '2026-11-01T08:00:00', '2026-11-01T08:00:00+1']) {
    await assert.rejects(history('--db', db, '--since', since), (e: Error) => {
      assert.ok(e.message.startsWith(`history: --since: "${since}" `), e.message);
      assert.doesNotMatch(e.message, /Invalid input|→ at/);
      return true;
    });
  }
  await assert.rejects(history('--db', db, '--since', 'yesterday'), EXPECTED);
  await assert.rejects(history('--db', db, '--since', '2026-13-01'), /"2026-13-01" is not a real date and time$/);
  await assert.rejects(history('--db', db, '--since', '2026-11-01T08:00:00'), /has no zone: add Z for UTC/);
});

test('history prune --before garbage says the same', async () => {
  await assert.rejects(history('prune', '--db', db, '--before', 'garbage'), (e: Error) => {
    assert.match(e.message, /^history prune: --before: "garbage" /);
    assert.match(e.message, EXPECTED);
    return true;
  });
});

test('a date or a time with its zone passes the options (the missing log is the error)', async () => {
  for (const since of ['2026-11-01', '2026-11-01T08:00:00Z', '2026-11-01T08:00:00+01:00', '2026-11-01 08:00+01'])
    await assert.rejects(history('--db', db, '--since', since), /no audit log/);
  for (const before of ['2026-11-01', '2026-11-01 08:00:00Z'])
    await assert.rejects(history('prune', '--db', db, '--before', before), /no audit log/);
});
