// An SQLite audit log this user may read but not write. QA: on a read-only mount (as root) `cxr serve` failed with
// only "unable to open database file", and as `nobody` with a log of root's with "attempt to write a readonly
// database"; `cxr history`, which only reads, failed the same way in both. A log in WAL mode is read through a -shm
// file SQLite must make beside it. Now history reads such a log (leaving nothing behind), and a command that
// writes it is refused naming the file and why, as one whose folder cannot be made already was.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type AuditRecord, openAuditStore } from '../src/serve/audit';
import { auditRecord, CLI, NORMAL_ANSWER, tempDir } from './serve-fixtures';

const root = process.getuid?.() === 0;
const NOBODY = 65534;
/**
 * Why the tests that run cxr as `nobody` cannot run here, or null: they need root, and a checkout `nobody` can
 * read (a clone in a folder of mode 0700, as mktemp makes, is not).
 */
const asNobody = (): string | false => {
  if (!root) return 'needs root';
  const probe = spawnSync(process.execPath, [CLI, '--version'], { uid: NOBODY, gid: NOBODY, encoding: 'utf8' });
  return probe.status === 0 ? false : `user nobody cannot run cxr from this checkout (${CLI})`;
};
let dir = '';
const films = '/work/shared/data/chest_xray/val/NORMAL';

const record = (i: number): AuditRecord => auditRecord(i, NORMAL_ANSWER, '00000000-0000-4000-8000-');

/** A log of two rows, closed as a server leaves it (no -wal, no -shm), in a folder of root's (mode 755). */
async function makeLog(folder: string): Promise<string> {
  fs.mkdirSync(folder, { recursive: true, mode: 0o755 });
  fs.chmodSync(folder, 0o755);
  const file = path.join(folder, 'audit.db');
  const store = await openAuditStore(file);
  await store.insert(record(1), null);
  await store.insert(record(2), null);
  await store.close();
  fs.chmodSync(file, 0o644);
  return file;
}

function cxr(args: string[], uid?: number) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    cwd: dir,
    env: { ...process.env, CXR_DB: '', HOME: dir },
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function film(): string {
  return path.join(films, fs.readdirSync(films).filter((f) => f.endsWith('.jpeg'))[0]);
}

before(() => {
  dir = tempDir('audit-readonly');
  fs.chmodSync(dir, 0o755); // `nobody` passes through it
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test("another user's log: history reads it, a writer is refused naming it", {
  skip: asNobody(),
}, async () => {
  const folder = path.join(dir, 'owned');
  const file = await makeLog(folder);
  const before = fs.readdirSync(folder);
  const h = cxr(['history', '--db', file, '--limit', '1'], NOBODY);
  assert.equal(h.code, 0, h.err);
  assert.match(h.out, new RegExp(`^2 prediction\\(s\\) in ${file}, newest 1\\n`));
  assert.deepEqual(fs.readdirSync(folder), before, 'history leaves nothing behind');

  const p = cxr(['predict', '--db', file, film()], NOBODY);
  assert.equal(p.code, 1, p.err);
  assert.match(
    p.err,
    new RegExp(`audit log ${file}: cannot write it \\(permission denied: only its owner may write it\\)`),
  );
  assert.doesNotMatch(p.err, /readonly database|unable to open/);

  // Its own folder, but not the file: SQLite cannot make the -wal and -shm files beside it.
  fs.chmodSync(file, 0o666);
  const q = cxr(['history', 'prune', '--db', file], NOBODY);
  assert.equal(q.code, 1, q.err);
  assert.match(q.err, /cannot write it \(permission denied: its folder is not writable, and SQLite makes its -wal/);
});

test('a log on a read-only file system: history reads it, a writer is refused naming it', {
  skip: !root && 'needs root (to mount)',
}, async (t) => {
  const file = await makeLog(path.join(dir, 'src'));
  const mount = path.join(dir, 'ro');
  fs.mkdirSync(mount);
  const sh = (cmd: string) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  const m = sh(`mount -t tmpfs -o size=4m tmpfs ${mount}`);
  if (m.status !== 0) return t.skip(`cannot mount a tmpfs here: ${m.stderr}`);
  try {
    fs.copyFileSync(file, path.join(mount, 'audit.db'));
    assert.equal(sh(`mount -o remount,ro ${mount}`).status, 0);
    const ro = path.join(mount, 'audit.db');
    const h = cxr(['history', '--db', ro, '--json']);
    assert.equal(h.code, 0, h.err);
    assert.equal(h.out.trim().split('\n').length, 2);
    for (const args of [
      ['predict', '--db', ro, film()],
      ['history', 'prune', '--db', ro],
    ]) {
      const w = cxr(args);
      assert.equal(w.code, 1, w.err);
      assert.match(w.err, new RegExp(`audit log ${ro}: cannot write it \\(it is on a read-only file system\\)`));
    }
  } finally {
    sh(`umount ${mount}`);
  }
});

test('rows still in the write-ahead log are not hidden: a reader that cannot see them is told', {
  skip: asNobody(),
}, async () => {
  const folder = path.join(dir, 'live');
  const file = await makeLog(folder);
  // A -wal that holds a writer's frames, without the -shm beside it (a writer that crashed, say): what it holds
  // cannot be read by one who cannot make the -shm, and the reader is told so rather than shown the file alone.
  const writer = await openAuditStore(file);
  await writer.insert(record(3), null);
  fs.copyFileSync(`${file}-wal`, path.join(dir, 'wal'));
  await writer.close();
  fs.copyFileSync(path.join(dir, 'wal'), `${file}-wal`);
  const h = cxr(['history', '--db', file], NOBODY);
  assert.equal(h.code, 1, h.err);
  assert.match(h.err, /cannot read it: its newest rows are in .*-wal/);
});
