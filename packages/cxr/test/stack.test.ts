// scripts/stack.sh: Orthanc on loopback with basic auth and DICOMweb, PostgreSQL on loopback with a
// generated password, Redis on loopback with a password; idempotent up, clean down.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openAuditStore } from '../src/serve/audit';
import {
  orthanc,
  postgresUnavailable,
  type Stack,
  stackCmd,
  stackUnavailable,
  startStack,
  stopStack,
} from './stack-fixture';

const skip = stackUnavailable();
let stack: Stack | undefined;
after(() => stopStack(stack));

test('stack.sh up starts Orthanc and Redis locked down; up again is a no-op; down stops it', {
  skip: skip ?? false,
  timeout: 300_000,
}, async () => {
  stack = startStack('stack');
  const { dir, env } = stack;
  assert.match(env.CXR_ORTHANC_URL, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(env.CXR_ORTHANC_USER, 'cxr');
  assert.ok(env.CXR_ORTHANC_PASSWORD.length >= 32, 'a generated password');
  assert.match(stack.up.stdout, /cxr orthanc sync --once/);

  // Secrets are readable by their owner only.
  for (const f of ['env', 'orthanc/password', 'orthanc/orthanc.json', 'redis/password', 'redis/redis.conf']) {
    assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, `${f} is mode 600`);
  }
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'orthanc', 'orthanc.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(cfg.RemoteAccessAllowed, false);
  assert.equal(cfg.AuthenticationEnabled, true);
  assert.ok((cfg.Plugins as string[])[0].includes('libOrthancDicomWeb'));

  // Basic auth is enforced, the password works, the DICOMweb plugin answers.
  const anon = await fetch(`${env.CXR_ORTHANC_URL}/system`);
  assert.equal(anon.status, 401);
  const sys = await orthanc(stack, '/system');
  assert.equal(sys.status, 200);
  const system = (await sys.json()) as { HttpPort: number; Name: string };
  assert.equal(`http://127.0.0.1:${system.HttpPort}`, env.CXR_ORTHANC_URL);
  const qido = await orthanc(stack, '/dicom-web/studies', { headers: { accept: 'application/dicom+json' } });
  assert.equal(qido.status, 200);
  assert.deepEqual(await qido.json(), []);

  // Redis: loopback, a generated password, enforced (an unauthenticated PING is refused).
  const redis = new URL(env.CXR_REDIS_URL);
  assert.equal(redis.protocol, 'redis:');
  assert.equal(redis.hostname, '127.0.0.1');
  assert.ok(redis.password.length >= 32, 'a generated Redis password');
  const cli = (auth: string) =>
    spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', redis.port, 'ping'], {
      encoding: 'utf8',
      env: { ...process.env, REDISCLI_AUTH: auth },
    }).stdout.trim();
  assert.equal(cli(redis.password), 'PONG');
  assert.match(cli('wrong'), /WRONGPASS|NOAUTH|invalid/i);

  const pid = fs.readFileSync(path.join(dir, 'orthanc', 'pid'), 'utf8');
  const again = stackCmd(dir, 'up');
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /already running/);
  assert.equal(fs.readFileSync(path.join(dir, 'orthanc', 'pid'), 'utf8'), pid, 'the same process');
  assert.equal(stackCmd(dir, 'status').code, 0);

  const down = stackCmd(dir, 'down');
  assert.equal(down.code, 0, down.stderr);
  assert.ok(!fs.existsSync(path.join(dir, 'orthanc', 'pid')));
  const st = stackCmd(dir, 'status');
  assert.equal(st.code, 1);
  assert.match(st.stdout, /orthanc: stopped/);
  assert.match(st.stdout, /redis: stopped/);
  await assert.rejects(fetch(`${env.CXR_ORTHANC_URL}/system`), 'nothing listens any more');
  assert.equal(stackCmd(dir, 'down').code, 0, 'down twice is fine');

  // kill: at once, without waiting for the reaper (a killed service is a zombie until init collects it).
  assert.equal(stackCmd(dir, 'up').code, 0);
  const pids = ['orthanc', 'redis'].map((s) => Number(fs.readFileSync(path.join(dir, s, 'pid'), 'utf8')));
  const killed = stackCmd(dir, 'kill');
  assert.equal(killed.code, 0, killed.stderr);
  assert.doesNotMatch(killed.stderr, /did not stop/);
  for (const p of pids) {
    const state = fs.existsSync(`/proc/${p}/stat`) ? fs.readFileSync(`/proc/${p}/stat`, 'utf8') : '';
    assert.ok(state === '' || /^\d+ \(.*\) Z /.test(state), `process ${p} is gone or a zombie: ${state}`);
  }
  assert.equal(stackCmd(dir, 'status').code, 1);
  await assert.rejects(fetch(`${env.CXR_ORTHANC_URL}/system`), 'nothing listens after kill');
});

const pgSkip = postgresUnavailable();
let pgStack: Stack | undefined;
after(() => stopStack(pgStack));

test('stack.sh up postgresql: loopback only, a generated password, the cxr database; idempotent; down stops it', {
  skip: pgSkip ?? false,
  timeout: 300_000,
}, async () => {
  pgStack = startStack('stack-pg', ['postgresql']);
  const { dir, env } = pgStack;
  assert.deepEqual(Object.keys(env), ['CXR_DB'], 'only the named service');
  const url = new URL(env.CXR_DB);
  assert.equal(url.protocol, 'postgres:');
  assert.equal(url.hostname, '127.0.0.1');
  assert.equal(url.pathname, '/cxr');
  assert.equal(url.username, 'cxr');
  assert.ok(url.password.length >= 32, 'a generated password');
  for (const f of ['env', 'postgresql/password']) {
    assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, `${f} is mode 600`);
  }
  const conf = fs.readFileSync(path.join(dir, 'postgresql', 'data', 'cxr-stack.conf'), 'utf8');
  assert.match(conf, /^listen_addresses = '127\.0\.0\.1'$/m);
  // The password works and nothing else does.
  const store = await openAuditStore(env.CXR_DB);
  assert.equal(await store.count(), 0);
  await store.close();
  url.password = 'wrong';
  await assert.rejects(openAuditStore(url.toString()), /password authentication failed/);

  const pid = stackCmd(dir, 'status', ['postgresql']);
  assert.equal(pid.code, 0);
  const again = stackCmd(dir, 'up', ['postgresql']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /postgresql already running/);
  assert.equal(stackCmd(dir, 'status', ['postgresql']).stdout, pid.stdout, 'the same server');
  assert.match(stackCmd(dir, 'up', ['mongodb']).stderr, /unknown service 'mongodb'/);

  assert.equal(stackCmd(dir, 'down', ['postgresql']).code, 0);
  const st = stackCmd(dir, 'status', ['postgresql']);
  assert.equal(st.code, 1);
  assert.match(st.stdout, /postgresql: stopped/);
  await assert.rejects(openAuditStore(env.CXR_DB), /ECONNREFUSED/);
  // Up again with the same password.
  const up = stackCmd(dir, 'up', ['postgresql']);
  assert.equal(up.code, 0, up.stderr);
  const back = await openAuditStore(
    fs
      .readFileSync(path.join(dir, 'env'), 'utf8')
      .trim()
      .replace(/^CXR_DB=/, ''),
  );
  assert.equal(await back.count(), 0);
  await back.close();
  // One more service later: the running server keeps its folder (root: the stack folder stays 711 for
  // the postgres user) and the env file keeps its settings beside the new service's.
  const redis = stackCmd(dir, 'up', ['redis']);
  assert.equal(redis.code, 0, redis.stderr);
  assert.equal(stackCmd(dir, 'status', ['postgresql']).code, 0, 'postgresql still running');
  const keys = fs
    .readFileSync(path.join(dir, 'env'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split('=')[0]);
  assert.deepEqual(keys, ['CXR_DB', 'CXR_REDIS_URL']);
  const again2 = await openAuditStore(env.CXR_DB);
  assert.equal(await again2.count(), 0);
  await again2.close();
  assert.equal(stackCmd(dir, 'down', ['redis']).code, 0);

  // kill stops PostgreSQL without a checkpoint; the next up recovers it with its data.
  assert.equal(stackCmd(dir, 'kill', ['postgresql']).code, 0);
  await assert.rejects(openAuditStore(env.CXR_DB), /ECONNREFUSED/);
  assert.equal(stackCmd(dir, 'up', ['postgresql']).code, 0);
  const recovered = await openAuditStore(env.CXR_DB);
  assert.equal(await recovered.count(), 0);
  await recovered.close();
});
