// `cxr serve --tokens-file`: SIGHUP reads the file again, so a revoked token stops working without a restart
// (a hang-up ended the server at once, and a removed token stayed valid until a restart); a file that cannot be
// read, or holds no token, keeps the tokens in use.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ChildServer, makeTinyModel, spawnServer, tempDir } from './serve-fixtures';

let dir: string;
let file: string;
let server: ChildServer;

before(async () => {
  dir = tempDir('token-reload');
  const model = await makeTinyModel(path.join(dir, 'model'));
  file = path.join(dir, 'tokens');
  fs.writeFileSync(file, 'alice:alice-token-1\nbob:bob-token-22\n', { mode: 0o600 });
  server = await spawnServer(['--model', model, '--db', path.join(dir, 'a.db'), '--tokens-file', file]);
});

after(async () => {
  await server?.stop('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

const status = async (token: string) =>
  (await fetch(`${server.url}/api/v1/model`, { headers: { authorization: `Bearer ${token}` } })).status;

/** Sends SIGHUP and waits for the server's answer to it in its log. */
async function hangUp(): Promise<string> {
  const before = server.log().length;
  server.proc.kill('SIGHUP');
  for (let i = 0; i < 500; i++) {
    const line = server
      .log()
      .slice(before)
      .split('\n')
      .find((l) => l.includes('SIGHUP'));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 10));
  }
  return assert.fail(`no answer to SIGHUP in the log:\n${server.log().slice(before)}`);
}

test('SIGHUP: a token taken out of the file is refused, one put in is taken, the others stay', async () => {
  assert.equal(await status('alice-token-1'), 200);
  fs.writeFileSync(file, 'bob:bob-token-22\ncarol:carol-token-333\n');
  assert.match(await hangUp(), /SIGHUP: tokens read again from .*: 2 in use/);
  assert.equal(await status('alice-token-1'), 401);
  assert.equal(await status('bob-token-22'), 200);
  assert.equal(await status('carol-token-333'), 200);
});

test('SIGHUP with a broken or empty file keeps the tokens in use, and the server', async () => {
  for (const text of ['carol:short\n', '# nobody\n']) {
    fs.writeFileSync(file, text);
    assert.match(await hangUp(), /the tokens in use are kept/);
    assert.equal(server.proc.exitCode, null, 'the server ended');
    assert.equal(await status('carol-token-333'), 200);
  }
});
