// Shared by the serve benchmarks: the model to serve and the X-ray to send.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const DIST = path.join(ROOT, 'packages', 'cxr', 'dist');
// The data beside the checkout (../shared/data), or CXR_DATA, as in the tests.
const SHARED = process.env.CXR_DATA ?? path.resolve(ROOT, '..', 'shared', 'data');

function opt(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

/** A full-resolution pediatric X-ray from shared/data/samples-fullres (or --image). */
function sampleImage() {
  const given = opt('image');
  if (given) return given;
  const d = path.join(SHARED, 'samples-fullres', 'PNEUMONIA');
  return path.join(
    d,
    fs
      .readdirSync(d)
      .filter((f) => f.endsWith('.jpeg'))
      .sort()[0],
  );
}

/**
 * --model DIR, else models/default, else cxrnet at its default 192×192 with random weights:
 * latency depends on the architecture and input size, not on the weights' values.
 */
async function benchModel() {
  const given = opt('model');
  if (given) return { dir: given, note: given };
  const shipped = path.join(ROOT, 'models', 'default');
  if (fs.existsSync(path.join(shipped, 'cxr.json'))) return { dir: shipped, note: 'models/default' };
  const { initEngine } = require(path.join(DIST, 'src', 'engine'));
  const { cxrnet } = require(path.join(DIST, 'src', 'models', 'cxrnet'));
  const { saveModel } = require(path.join(DIST, 'src', 'models', 'io'));
  const { MODEL_FORMAT } = require(path.join(DIST, 'src', 'models', 'metadata'));
  await initEngine();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-bench-model-'));
  const inputSize = Number(opt('input-size', 192));
  const model = cxrnet({ inputSize });
  await saveModel(model, dir, {
    format: MODEL_FORMAT,
    name: 'cxrnet-random',
    version: 'bench',
    arch: 'cxrnet',
    inputSize,
    preprocessing: { resize: 'fill', scale: 1 / 255 },
    classNames: ['NORMAL', 'PNEUMONIA'],
    temperature: 1,
    operatingPoints: { screening: { threshold: 0.3 }, balanced: { threshold: 0.5 } },
    defaultOperatingPoint: 'balanced',
    tta: [],
    members: [],
    recipe: {},
    data: {},
    createdAt: new Date().toISOString(),
  });
  model.dispose();
  return { dir, note: `cxrnet ${inputSize}×${inputSize}, random weights (no models/default yet)`, temp: true };
}

function multipart(file) {
  const boundary = '----cxrbench7MA4YWxkTrZu0gW';
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${path.basename(file)}"\r\nContent-Type: image/jpeg\r\n\r\n`,
    ),
    fs.readFileSync(file),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function machine() {
  return `${os.cpus().length} × ${os.cpus()[0].model.trim()}, load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;
}

module.exports = { ROOT, DIST, opt, sampleImage, benchModel, multipart, median, machine };
