// cxr used as a library (docs/library.md): a program's process ends when its work is done (the light entry's
// packages are package-predict-entry's subject). Each program runs in a child process of its own,
// with a fresh require.cache, and finds the package by name, as an installed one would.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnAsync } from './spawn-async';
import { postgresUnavailable, type Stack, startStack, stopStack } from './stack-fixture';

const repo = path.resolve(__dirname, '..', '..', '..', '..');

/** Runs `program` (CommonJS) in a fresh Node; its output, and how long it ran after printing `last call <ms>`. */
async function runProgram(program: string): Promise<{ stdout: string; tailMs: number }> {
  const r = await spawnAsync(process.execPath, ['-e', program], { cwd: repo, encoding: 'utf8', timeout: 90_000 });
  const ended = Date.now();
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`.slice(-2000));
  const lastCall = /^last call (\d+)$/m.exec(r.stdout);
  return { stdout: r.stdout, tailMs: lastCall ? ended - Number(lastCall[1]) : Number.NaN };
}

let stack: Stack | undefined;
let pgSkip: string | false = postgresUnavailable() ?? false;
after(() => stopStack(stack));

/** The stack's PostgreSQL, started on first use (only the tests that need it pay for it). */
function postgresUrl(): string {
  stack ??= startStack('library-s39', ['postgresql']);
  return stack.env.CXR_DB;
}

/** A program that opens the PostgreSQL audit log, reads it, and closes it or not. */
function auditProgram(url: string, close: boolean): string {
  return `
const { openAuditStore } = require('@cxr/app');
(async () => {
  const store = await openAuditStore(${JSON.stringify(url)});
  const rows = await store.count();
  ${close ? "await store.close(); console.log('closed');" : ''}
  console.log('rows ' + rows);
  console.log('last call ' + Date.now());
})().catch((e) => { console.error(e); process.exit(1); });`;
}

// The pool's idle connections (idleTimeoutMillis 30 s) held such a program for 30 s after its last call.
test('a program done with a PostgreSQL audit log that forgot close() exits at once, not 30 s later', {
  skip: pgSkip,
  timeout: 240_000,
}, async (t) => {
  let url: string;
  try {
    url = postgresUrl();
  } catch (e) {
    pgSkip = `PostgreSQL did not start: ${(e as Error).message.slice(0, 2000)}`;
    return t.skip(pgSkip);
  }
  const [forgot, closed] = await Promise.all([
    runProgram(auditProgram(url, false)),
    runProgram(auditProgram(url, true)),
  ]);
  assert.ok(/^rows \d+$/m.test(forgot.stdout), forgot.stdout);
  assert.ok(forgot.tailMs < 10_000, `the process ran ${forgot.tailMs} ms after its last call`);
  // The documented close: it returns (what follows it runs), and the process ends at once.
  assert.ok(/^closed$/m.test(closed.stdout), closed.stdout);
  assert.ok(closed.tailMs < 10_000, `after close() the process ran ${closed.tailMs} ms more`);
});
