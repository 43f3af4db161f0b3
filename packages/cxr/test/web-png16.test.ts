// A 16-bit PNG of 12-bit values on the page (data/png16.ts): the server reads it as the film and answers with a
// probability; "Process on this computer" cannot (the browser's canvas keeps the high byte of each sample, so the
// film would read as levels 0..15 and be called blank), so the page says to send it to the server, and sends
// nothing itself. An 8-bit film is still analyzed in the browser. Chromium against a real server.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { finished, Gate, isPrediction, noChromium, pageSuite, upload } from './browser-fixture';
import { pngChunk } from './image-bytes';
import { XRAY_JPEG } from './serve-fixtures';

const skip = noChromium;
const suite = pageSuite('web-png16', skip);

/** A grey 16-bit PNG of `samples` (no sBIT: the values as a DICOM-to-PNG export writes them). */
function grey16(width: number, height: number, samples: ArrayLike<number>): Buffer {
  const stride = 1 + 2 * width;
  const rows = Buffer.alloc(height * stride);
  for (let i = 0; i < width * height; i++)
    rows.writeUInt16BE(samples[i], Math.floor(i / width) * stride + 1 + 2 * (i % width));
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([16, 0, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(rows)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

type Card = { state: string; source: string; verdict: string; probability: number; error: string };

test('a 16-bit PNG of 12-bit values: a probability from the server; in the browser, sent nowhere and said so', {
  skip,
  timeout: 180_000,
}, async () => {
  const { data, info } = await sharp(XRAY_JPEG).greyscale().resize(256).raw().toBuffer({ resolveWithObject: true });
  const twelve = grey16(
    info.width,
    info.height,
    Array.from(data, (v) => Math.round((v * 4095) / 255)),
  );
  const eight = await sharp(data, { raw: { width: info.width, height: info.height, channels: 1 } })
    .png()
    .toBuffer();
  const gate = new Gate(isPrediction);
  const { page, errors } = await suite.open({ gate });
  const cards = (): Promise<Card[]> =>
    page.$$eval('.result', (els) =>
      els.map((e) => {
        const d = (e as HTMLElement).dataset;
        const error = e.querySelector('.warnings li.error')?.textContent ?? '';
        return {
          state: d.state ?? '',
          source: d.source ?? '',
          verdict: d.verdict ?? '',
          probability: Number(d.probability),
          error,
        };
      }),
    );

  await page.setInputFiles('#file-input', [upload('film12.png', twelve)]);
  await finished(page, 1);
  const [served] = await cards();
  assert.equal(served.state, 'done', JSON.stringify(served));
  assert.equal(served.source, 'server');
  assert.ok(served.probability >= 0 && served.probability <= 1, JSON.stringify(served));
  assert.notEqual(served.verdict, 'cannot-assess', 'the server read the film, not a blank square');
  assert.equal(gate.requests.length, 1);

  await page.check('#local-mode');
  await page.waitForFunction(() => /Model loaded/.test(document.querySelector('#status')?.textContent ?? ''), null, {
    timeout: 60_000,
  });
  await page.setInputFiles('#file-input', [upload('film12.png', twelve), upload('film8.png', eight)]);
  await finished(page, 3);
  const [local12, local8] = await cards(); // the newest batch first, in upload order
  assert.equal(local12.state, 'error', `the browser scored a film it read as levels 0..15: ${JSON.stringify(local12)}`);
  assert.match(local12.error, /16-bit PNGs are analyzed on the server only.*turn off "Process on this computer"/);
  assert.equal(local8.state, 'done', JSON.stringify(local8));
  assert.equal(local8.source, 'local');
  assert.equal(gate.requests.length, 1, 'nothing sent in "Process on this computer"');
  assert.deepEqual(errors, []);
  await page.context().close();
});
