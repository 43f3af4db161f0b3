// `cxr robustness` arguments checked before any work: a wrong --outside folder failed only after all
// 20 changes × 3 strengths were scored (and without naming --outside), `--changes ,` ran every change,
// and --help printed two defaults for --limit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildProgram } from '../src/cli/main';
import { runRobustness } from '../src/robustness/run';
import { DATA, makeTinyModel, tempDir } from './serve-fixtures';
import { needsData } from './shared-data';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const TRAIN = path.join(DATA, 'chest_xray', 'train');
const skip = needsData(TRAIN);
let dir = '';
let model = '';

before(async () => {
  if (skip) return;
  dir = tempDir('robustness-args');
  model = await makeTinyModel(path.join(dir, 'model'), { inputSize: 32 });
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs `cxr robustness` in process; resolves to the error it was refused with and what commander wrote. */
async function refused(...args: string[]): Promise<{ message: string; stderr: string }> {
  let stderr = '';
  const program = buildProgram().exitOverride();
  program.commands.forEach((c) => c.exitOverride().configureOutput({ writeErr: (t) => (stderr += t) }));
  const write = process.stderr.write;
  // The run's progress lines: none may appear before a refusal of its arguments.
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    await program.parseAsync(['robustness', '--model', model, '--data', TRAIN, '--limit', '2', ...args], {
      from: 'user',
    });
  } catch (e) {
    return { message: (e as Error).message, stderr };
  } finally {
    process.stderr.write = write;
  }
  assert.fail(`cxr robustness ${args.join(' ')} was not refused`);
}

test('--outside that is not a folder of films is refused up front, naming --outside', { skip }, async () => {
  const missing = path.join(dir, 'nonexist');
  const file = path.join(dir, 'afile');
  fs.writeFileSync(file, 'x');
  const empty = path.join(dir, 'empty');
  fs.mkdirSync(empty);
  for (const [where, why] of [
    [missing, /no such folder/],
    [file, /is a file, not a folder: give a folder with NORMAL\/ and PNEUMONIA\//],
    [empty, /expected NORMAL\/ and PNEUMONIA\//],
  ] as const) {
    const r = await refused('--changes', 'blur', '--strengths', '1', '--outside', where);
    assert.match(r.message, new RegExp(`^--outside ${where}: `), r.message);
    assert.match(r.message, why);
    assert.doesNotMatch(r.stderr, /blur|images at/, 'nothing was scored');
  }
});

test('runRobustness checks its outside folder before scoring any change', { skip }, async () => {
  const lines: string[] = [];
  await assert.rejects(
    runRobustness({
      modelDir: model,
      data: TRAIN,
      limit: 2,
      changes: ['blur'],
      strengths: [1],
      outside: path.join(dir, 'nonexist'),
      log: (l) => lines.push(l),
    }),
    /outside-check folder .*nonexist: no such folder/,
  );
  assert.deepEqual(lines, []);
});

test('an empty --changes list is refused, not read as every change', { skip }, async () => {
  for (const list of [',', ' , ', '']) {
    const r = await refused('--changes', list);
    assert.match(r.stderr, /--changes.*expected one or more change names \(known: exposure-up/, r.stderr);
  }
  await assert.rejects(
    runRobustness({ modelDir: model, data: TRAIN, changes: [], outside: false }),
    /changes: the list is empty/,
  );
});

test('--help shows one default for --limit', () => {
  const cmd = buildProgram().commands.find((c) => c.name() === 'robustness')!;
  // The option's entry, its wrapped lines joined: from --limit to the next option.
  const help = cmd.helpInformation().replace(/\s+/g, ' ');
  const limit = help.slice(help.indexOf('--limit'), help.indexOf('--seed <s>'));
  assert.equal(limit.match(/\(default/g)?.length, 1, limit);
  assert.match(limit, /\(default: all\)/);
});
