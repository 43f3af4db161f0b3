// `cxr serve` with a job queue and Orthanc says at start whether Orthanc answers its login: a wrong password
// showed only at the first Orthanc job (503 with a five-minute Retry-After). A server without Orthanc says
// nothing of it. The check never stops the server: predictions need no PACS.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { startModelStack, stopModelStack } from './queue-stack';
import { spawnServer } from './serve-fixtures';
import { type Stack, stackUnavailable } from './stack-fixture';

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let modelDir = '';

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('serve-orthanc-check', ['orthanc', 'redis']));
});

after(async () => {
  await stopModelStack({ stack, dir });
});

/** Starts a server with `env`, waits for its Orthanc line (at most `waitMs`), and stops it; its log. */
async function startLog(env: Record<string, string>, db: string, waitMs = 10_000): Promise<string> {
  const server = await spawnServer(['--model', modelDir, '--db', path.join(dir, db)], env);
  try {
    for (let t = 0; t < waitMs && !/Orthanc (at|refused|does not)/.test(server.log()); t += 50)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal((await fetch(`${server.url}/api/v1/health`)).status, 200, 'the server runs whatever Orthanc says');
    return server.log();
  } finally {
    await server.stop();
  }
}

test('serve says at start whether Orthanc takes its login', { skip: skip ?? false, timeout: 120_000 }, async () => {
  const env = stack!.env as Record<string, string>;
  const good = await startLog(env, 'good.db');
  assert.match(good, /Orthanc at http:\/\/[^ ]+ answers \([^)]+ \d+\.\d+\.\d+\)/);
  const wrong = await startLog({ ...env, CXR_ORTHANC_PASSWORD: 'not-the-password' }, 'wrong.db');
  assert.match(wrong, /"level":"warn"[^\n]*Orthanc refused the server's login[^\n]*CXR_ORTHANC_PASSWORD are fixed/);
  assert.ok(!wrong.includes('not-the-password'), 'the password stays out of the log');
  const { CXR_ORTHANC_URL: _, ...withoutOrthanc } = env;
  // Redis is checked after start as Orthanc is: its line has come by the time Orthanc's would have.
  const none = await startLog({ ...withoutOrthanc, CXR_ORTHANC_URL: '' }, 'none.db', 1_000);
  assert.match(none, /job queue: Redis at [^ ]+ answers/);
  assert.doesNotMatch(none, /Orthanc/);
});
