// Review of the CLI commands (session 33): options whose values go to a timer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { register as registerOrthanc } from '../src/cli/orthanc';
import { register as registerWorker } from '../src/cli/worker';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureWritableFile } from '../src/cli/writable';
import { auditRecord, tempDir } from './serve-fixtures';
import { register as registerHistory } from '../src/cli/history';

/**
 * Parses `args` as the named command's options; the action is replaced, so nothing runs: only what the
 * options' parsers accept or refuse is seen. Returns the refusal's message, or null when accepted.
 */
async function refusal(register: (p: Command) => void, args: string[]): Promise<string | null> {
  const program = new Command('cxr').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  register(program);
  // The leaf command: `orthanc sync` or `worker`.
  let leaf = program.commands.find((c) => c.name() === args[0])!;
  if (args[1] === 'sync') leaf = leaf.commands.find((c) => c.name() === 'sync')!;
  leaf.action(() => {});
  try {
    await program.parseAsync(args, { from: 'user' });
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

// setTimeout takes at most 2^31 - 1 ms; a longer delay fires after 1 ms (TimeoutOverflowWarning): a poll period of
// 25 days polled Orthanc without pause, and a close timeout of 25 days gave up on the close at once (exit 1).
test('orthanc sync refuses an --interval longer than a timer can wait, and takes the longest one', async () => {
  const why = await refusal(registerOrthanc, ['orthanc', 'sync', '--interval', '2147484']);
  assert.match(why ?? 'accepted', /--interval/);
  assert.equal(await refusal(registerOrthanc, ['orthanc', 'sync', '--interval', '2147483']), null);
  assert.equal(await refusal(registerOrthanc, ['orthanc', 'sync', '--interval', '0.5']), null);
});

test('orthanc sync and worker refuse a --close-timeout longer than a timer can wait', async () => {
  assert.match(
    (await refusal(registerOrthanc, ['orthanc', 'sync', '--close-timeout', '2147483648'])) ?? 'accepted',
    /--close-timeout/,
  );
  assert.match(
    (await refusal(registerWorker, ['worker', '--close-timeout', '2147483648'])) ?? 'accepted',
    /--close-timeout/,
  );
  assert.equal(await refusal(registerWorker, ['worker', '--close-timeout', '2147483647']), null);
});

// BullMQ looks for stalled jobs with setTimeout(stalledInterval): past the limit it looked without pause.
test('worker refuses a --stalled-interval longer than a timer can wait', async () => {
  assert.match(
    (await refusal(registerWorker, ['worker', '--stalled-interval', '2147483648'])) ?? 'accepted',
    /--stalled-interval/,
  );
  assert.equal(await refusal(registerWorker, ['worker', '--stalled-interval', '15000']), null);
});

// `ood fit-layout --out notes.txt/layout.ts` (a file where the folder should be) ended in a raw
// 'ENOTDIR: not a directory, stat ...' that named no option, where a folder option says what is wrong.
test('ensureWritableFile names the option when a file stands where its folder should be', (t) => {
  const dir = tempDir('cli-review-s33');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'notes.txt');
  fs.writeFileSync(file, 'x');
  assert.throws(
    () => ensureWritableFile(path.join(file, 'layout.ts'), '--out'),
    (e: Error) => e.message.startsWith('--out ') && /a file is in the way/.test(e.message),
  );
});

// `cxr history --limit N` over 1000 reads the log a page (1000 rows) at a time, counted from the newest row. A
// server writing the log meanwhile pushed every row one down, and the last row of page 1 came again at the top of
// page 2: the same prediction listed twice.
test('history --limit over a page lists no prediction twice when the log grows between its pages', async (t) => {
  const dir = tempDir('cli-review-s33-history');
  const db = path.join(dir, 'audit.db');
  const audit = require('../src/serve/audit') as typeof import('../src/serve/audit');
  const open = audit.openAuditStore;
  const store = await open(db);
  for (let i = 0; i < 1002; i++) await store.insert(auditRecord(i), null);
  await store.close();
  const writes: string[] = [];
  const write = process.stdout.write;
  t.after(() => {
    (audit as { openAuditStore: typeof open }).openAuditStore = open;
    process.stdout.write = write;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  // The command's reader, with a server's write between its first page and its second.
  (audit as { openAuditStore: typeof open }).openAuditStore = async (target, opts) => {
    const reader = await open(target, opts);
    const list = reader.list.bind(reader);
    let pages = 0;
    reader.list = async (filter) => {
      const page = await list(filter);
      if (++pages === 1) {
        const writer = await open(db);
        await writer.insert(auditRecord(5000), null);
        await writer.close();
      }
      return page;
    };
    return reader;
  };
  const program = new Command('cxr').exitOverride();
  registerHistory(program);
  process.stdout.write = ((chunk: string) => {
    writes.push(chunk);
    return true;
  }) as unknown as typeof process.stdout.write;
  try {
    await program.parseAsync(['history', '--db', db, '--json', '--limit', '1002'], { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  const ids = writes
    .join('')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { id: string }).id);
  assert.equal(new Set(ids).size, ids.length, 'a prediction listed twice');
  assert.equal(ids.length, 1002);
});

// BullMQ renews a job's lock every lockDuration / 4 and, by default here, looks for stalled jobs every
// lockDuration / 2, each with setTimeout: a lock of 100 days renewed without pause.
test('worker refuses a --lock-duration longer than a timer can wait', async () => {
  assert.match(
    (await refusal(registerWorker, ['worker', '--lock-duration', '8640000000'])) ?? 'accepted',
    /--lock-duration/,
  );
  assert.equal(await refusal(registerWorker, ['worker', '--lock-duration', '2147483647']), null);
  assert.match((await refusal(registerWorker, ['worker', '--lock-duration', '4000'])) ?? 'accepted', /at least/);
});
