// `cxr calibrate` rewrites the model folder's report (when it has one) so that the page shows the new
// temperature and thresholds that cxr.json and the model card now hold, and takes --threads like its siblings.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { register } from '../src/cli/calibrate';
import { readMeta } from '../src/models/io';
import { writeReport } from '../src/report/write_report';
import { CHEST_XRAY, haveData, makeSeededModel, tempDir } from './ood-fixtures';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** `cxr calibrate ARGS`, its stdout and stderr. */
async function calibrate(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  const program = new Command('cxr').exitOverride();
  register(program);
  let stdout = '';
  let stderr = '';
  const [out, err] = [process.stdout.write, process.stderr.write];
  // Only the command's text: the test runner's own (binary) reports pass through.
  const capture = (into: (s: string) => void, write: typeof out, stream: NodeJS.WriteStream) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (typeof chunk !== 'string') return (write as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
      into(chunk);
      return true;
    }) as typeof out;
  process.stdout.write = capture((s) => (stdout += s), out, process.stdout);
  process.stderr.write = capture((s) => (stderr += s), err, process.stderr);
  try {
    await program.parseAsync(['calibrate', ...args], { from: 'user' });
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  return { stdout, stderr };
}

const split = { valFraction: 0.3, splitSeed: 3, limitPerClass: 12 };
const tiny = { inputSize: 32, widths: [4, 8, 8, 8], split };
const temperatureRow = (html: string) => /Calibration temperature<\/td><td>([0-9.]+)</.exec(html)?.[1];

test('cxr calibrate rewrites the report of a folder that has one, and says so', {
  skip: !haveData && 'no shared/data',
}, async () => {
  const dir = tempDir('calibrate-report');
  dirs.push(dir);
  const model = await makeSeededModel(path.join(dir, 'model'), tiny);
  await writeReport(model);
  const page = path.join(model, 'report', 'index.html');
  assert.equal(temperatureRow(fs.readFileSync(page, 'utf8')), '1.500', 'the fixture reports its own temperature');

  const r = await calibrate('--model', model, '--data', CHEST_XRAY, '--threads', '1', '--json');
  const json = JSON.parse(r.stdout) as { temperature: number; report: string | null };
  assert.equal(json.report, page);
  assert.match(r.stderr, /report rewritten with the new calibration: .*index\.html/);
  const html = fs.readFileSync(page, 'utf8');
  assert.notEqual(json.temperature.toFixed(3), '1.500');
  assert.equal(temperatureRow(html), json.temperature.toFixed(3));
  const balanced = readMeta(model).operatingPoints.balanced.threshold;
  assert.ok(html.includes(`<td>${balanced.toFixed(3)}</td>`), 'the new balanced threshold is on the page');
});

test('cxr calibrate writes no report where the folder had none; --threads takes a positive integer', {
  skip: !haveData && 'no shared/data',
}, async () => {
  const dir = tempDir('calibrate-noreport');
  dirs.push(dir);
  const model = await makeSeededModel(path.join(dir, 'model'), tiny);
  const r = await calibrate('--model', model, '--data', CHEST_XRAY, '--threads', '1', '--json');
  assert.equal((JSON.parse(r.stdout) as { report: string | null }).report, null);
  assert.ok(!fs.existsSync(path.join(model, 'report')));
  await assert.rejects(calibrate('--model', model, '--data', CHEST_XRAY, '--threads', 'two'), /positive integer/);
});
