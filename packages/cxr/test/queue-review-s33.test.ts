// Review of the queue (session 33): pure functions only, no Redis.
// - A job id's operating point is URL-encoded with `!'()*~` too: encodeURIComponent leaves them, and an id holding
//   one was refused by canonicalJobId (GET /api/v1/jobs/:id answered 400 "not a job id") for a job just queued; a
//   `~` split the id into four parts.
// - The Redis URL: a value that is no URL at all is refused with the URL's own message (zod ran the later checks,
//   whose `new URL` threw TypeError "Invalid URL"), and a login that is not valid percent-encoding (a bare % in
//   the password) is refused when the URL is read, not by every command later with "URI malformed".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { canonicalJobId, jobIdFor, loadRedisUrl, redisConnection } from '../src/queue';

const MODEL = 'a'.repeat(64);
const SHA = `sha256:${'b'.repeat(64)}`;

test("a job id names its operating point so that GET /jobs/:id takes it back, whatever the point's name", () => {
  for (const op of ['sens(0.95)', "radiologist's", 'wide*', 'yes!', 'a~b', '~']) {
    for (const [key, kind] of [
      ['1.2.840.1', 'file'],
      ['1.2.840.1', 'orthanc'],
      [`${SHA}+age-over-10`, 'upload'],
    ] as const) {
      const id = jobIdFor(key, MODEL, op, kind);
      assert.equal(id.split('~').length, 3, `${op}: film, model, operating point (${id})`);
      assert.equal(canonicalJobId(id), id, `${op}: the server's own id is a job id (${id})`);
      assert.equal(id.split('~')[1], MODEL, 'the model stays the middle part (uploads.ts, routes/jobs.ts)');
    }
  }
  // Two names apart stay two ids.
  assert.notEqual(jobIdFor('1.2.3', MODEL, 'a~b'), jobIdFor('1.2.3', MODEL, 'a%7Eb'));
  // Names without those characters keep the ids they had (jobs already queued are found again).
  assert.equal(jobIdFor('1.2.3', MODEL, 'balanced'), `1.2.3~${MODEL}~balanced`);
  assert.equal(jobIdFor('1.2.3', MODEL, 'high-sensitivity'), `1.2.3~${MODEL}~high-sensitivity`);
  assert.equal(jobIdFor('1.2.3', MODEL, 'a b.c_d'), `1.2.3~${MODEL}~a%20b.c_d`);
});

test('a Redis URL that is no URL at all is refused with the words for it, not a TypeError', () => {
  for (const bad of ['redis//localhost:6379', 'not a url', 'redis://[::1']) {
    assert.throws(
      () => loadRedisUrl({ env: { CXR_REDIS_URL: bad } }),
      (e: Error) => e.constructor === Error && /^CXR_REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/.test(e.message),
      bad,
    );
    assert.throws(
      () => loadRedisUrl({ url: bad, env: {} }),
      (e: Error) => /^--redis: must be a redis:\/\//.test(e.message),
      bad,
    );
  }
});

test('a Redis URL whose login is not valid percent-encoding is refused when read, saying how to write a %', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-redis-s33-'));
  try {
    for (const bad of ['redis://:pa%ss@127.0.0.1:6379/1', 'redis://us%er:pw@127.0.0.1/0', 'redis://:%E0%A4@h/0']) {
      const says = /not valid percent-encoding \(write a % in it as %25\)/;
      assert.throws(() => loadRedisUrl({ env: { CXR_REDIS_URL: bad } }), says, bad);
      assert.throws(() => loadRedisUrl({ url: bad, env: {} }), says, bad);
      const file = path.join(dir, 'redis.json');
      fs.writeFileSync(file, JSON.stringify({ url: bad }), { mode: 0o600 });
      assert.throws(() => loadRedisUrl({ configFile: file, env: {} }), says, bad);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // Written as the message says, the same password is taken and decoded for Redis.
  const url = loadRedisUrl({ env: { CXR_REDIS_URL: 'redis://:pa%25ss@127.0.0.1:6379/1' } });
  assert.equal((redisConnection(url) as { password?: string }).password, 'pa%ss');
});
