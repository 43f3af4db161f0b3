// `cxr history --db X` where X is not a log it can read: a folder, an empty file, another program's SQLite
// database, nothing at all. Each is named for what it is, with advice that fits, and history (a reader)
// leaves every file as it found it: no log made, no -wal or -shm beside one. Also its option rules:
// one output format, and --limit a number.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { Command } from 'commander';
import { register } from '../src/cli/history';
import { openAuditStore } from '../src/serve/audit';

function program(): Command {
  const p = new Command('cxr').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  register(p);
  return p;
}

async function history(...args: string[]): Promise<void> {
  await program().parseAsync(['history', ...args], { from: 'user' });
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-history-db-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Every file under `dir` with its bytes, to see that nothing was made or changed. */
function snapshot(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    out[path.relative(dir, p)] = fs.readFileSync(p).toString('base64');
  }
  return out;
}

/** An SQLite file of another program in the test folder, made by `sql`. */
function otherProgramsDb(name: string, sql: string): string {
  const file = path.join(dir, name);
  const db = new Database(file);
  db.exec(sql);
  db.close();
  return file;
}

test('a folder, an empty file, a foreign database and a missing file are each named for what they are', async () => {
  const folder = path.join(dir, 'folder');
  fs.mkdirSync(folder);
  const empty = path.join(dir, 'empty.db');
  fs.writeFileSync(empty, '');
  const foreign = otherProgramsDb('foreign.db', 'CREATE TABLE notes (t TEXT)');
  const before = snapshot();

  await assert.rejects(history('--db', folder), /audit log .*folder: cannot open it \(it is a folder\)$/);
  await assert.rejects(history('prune', '--db', folder), /cannot open it \(it is a folder\)$/);
  for (const args of [
    ['--db', empty],
    ['prune', '--db', empty],
  ])
    await assert.rejects(history(...args), (e: Error) => {
      assert.equal(
        e.message,
        `${empty}: an empty file, not an audit log yet ('cxr serve' or 'cxr predict' writes one there)`,
      );
      return true;
    });
  await assert.rejects(history('--db', foreign), (e: Error) => {
    assert.equal(e.message, `${foreign}: an SQLite database but not cxr's audit log (--db names the audit log)`);
    return true;
  });
  await assert.rejects(
    history('--db', path.join(dir, 'none.db')),
    /none\.db: no audit log there \('cxr serve' or 'cxr predict' writes one\)$/,
  );
  assert.deepEqual(snapshot(), before, 'nothing made, nothing changed');
});

test('reading a log leaves no -wal or -shm behind and the log as it was', async () => {
  const file = path.join(dir, 'log', 'audit.db');
  await (await openAuditStore(file)).close();
  const before = fs.readFileSync(file);
  await history('--db', file, '--json');
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['audit.db']);
  assert.deepEqual(fs.readFileSync(file), before);
  // While a writer has it open, a reader reads beside it and the writer's close still tidies up.
  const writer = await openAuditStore(file);
  await history('--db', file, '--json');
  await writer.close();
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['audit.db']);
});

test('--json with --csv is refused, before the log is looked for', async () => {
  await assert.rejects(history('--db', path.join(dir, 'none.db'), '--json', '--csv'), (e: Error) => {
    assert.match(e.message, /option '--json' cannot be used with option '--csv'/);
    return true;
  });
});

test('--limit is a number: its default shows as one, and 1.5 or 0 is refused by name', async () => {
  const help = program()
    .commands.find((c) => c.name() === 'history')!
    .helpInformation();
  assert.match(help, /--limit <n> .*\(default: 20\)/);
  for (const bad of ['1.5', '0', '20x'])
    await assert.rejects(history('--db', path.join(dir, 'none.db'), '--limit', bad), /--limit <n>.*is invalid/);
});

test("a writer (serve, predict, sync) refuses another program's SQLite database, adding no tables", async () => {
  const other = otherProgramsDb('other-program.db', 'CREATE TABLE foo (a INTEGER)');
  const before = fs.readFileSync(other);
  await assert.rejects(openAuditStore(other), /other-program\.db: an SQLite database but not cxr's audit log/);
  assert.deepEqual(fs.readFileSync(other), before, 'nothing written to it');
  // One that sets its own user_version (many programs do) is no log either, not an old or newer one.
  const versioned = otherProgramsDb('versioned-program.db', 'CREATE TABLE bar (a INTEGER); PRAGMA user_version = 7');
  const kept = fs.readFileSync(versioned);
  await assert.rejects(openAuditStore(versioned), /versioned-program\.db: an SQLite database but not cxr's audit log/);
  await assert.rejects(history('--db', versioned), /versioned-program\.db: an SQLite database but not cxr's audit log/);
  assert.deepEqual(fs.readFileSync(versioned), kept, 'nothing written to it, WAL mode included');
  // A new file or an empty one is where a log is made.
  const fresh = await openAuditStore(path.join(dir, 'new-log.db'));
  await fresh.close();
});
