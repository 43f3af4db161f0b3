// `cxr serve` refusing a folder its options name (a model folder not there, an empty one, a --db folder missing)
// logs one fatal JSON line with a code and the message's own words, "not starting", and no stack trace: these are
// configuration faults, as a refused audit login is, not bugs. Each is a real `cxr serve` process (its exit code
// and its log line are the subject), the three side by side.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnAsync } from './spawn-async';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');

test('cxr serve says a folder its options name cannot be used in one log line with a code and no stack', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-serve-refusals-'));
  const empty = path.join(root, 'empty-model');
  fs.mkdirSync(empty);
  const cases = [
    { args: ['--model', path.join(root, 'nope')], code: 'BAD_OPTION', words: '--model' },
    { args: ['--model', empty], code: 'NOT_A_MODEL', words: 'no cxr.json' },
    { args: ['--db', path.join(root, 'typo', 'audit.db')], code: 'BAD_OPTION', words: 'does not exist' },
  ];
  const ended = await Promise.all(
    cases.map((c) =>
      spawnAsync(process.execPath, [MAIN, 'serve', '--port', '0', ...c.args], {
        env: { ...process.env, CXR_DB: path.join(root, 'default', 'audit.db') },
        timeout: 60_000,
      }),
    ),
  );
  try {
    cases.forEach((c, i) => {
      const r = ended[i];
      assert.equal(r.status, 1, `${c.args.join(' ')}: exits 1 (got ${r.status}; ${r.stderr.slice(-300)})`);
      const lines = (r.stdout + r.stderr).split('\n').filter((l) => l.startsWith('{'));
      const fatal = lines.map((l) => JSON.parse(l)).find((j) => j.level === 'fatal');
      assert.ok(fatal, `${c.args.join(' ')}: a fatal log line (${lines.join(' | ').slice(0, 300)})`);
      assert.equal(fatal.code, c.code, `${c.args.join(' ')}: the code`);
      assert.ok(String(fatal.msg).includes(c.words), `${c.args.join(' ')}: the message says it (${fatal.msg})`);
      assert.ok(String(fatal.msg).endsWith(': not starting'), `${c.args.join(' ')}: "not starting"`);
      assert.equal(fatal.err, undefined, `${c.args.join(' ')}: no error object with a stack trace`);
      assert.ok(!(r.stdout + r.stderr).includes('    at '), `${c.args.join(' ')}: no stack frame anywhere`);
    });
    assert.ok(!fs.existsSync(path.join(root, 'typo')), 'the mistyped --db folder was not made');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
