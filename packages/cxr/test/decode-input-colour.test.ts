// The colour check (explain/image_checks.ts COLOUR) reads one copy of a colour film whatever else is asked: it
// read the heat map's 512-pixel copy when a heat map was wanted and a 64-pixel one otherwise, and a gray film under
// a thin red grid (1 px every 32) was 13 % coloured at 512 and none at 64: "cannot assess" on the page's first
// answer (heat map on), assessed through the API without one and in the page's local mode (64 px).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import sharp from 'sharp';
import { DEFAULT_LIMITS } from '../src/data/decode';
import { decodeInput } from '../src/predict/decode_input';

/** A mid-gray RGB film with a one-pixel red line every `every` pixels, both ways. */
async function griddedFilm(side: number, every: number): Promise<Buffer> {
  const px = Buffer.alloc(side * side * 3, 128);
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++) if (x % every === 0 || y % every === 0) px.set([255, 0, 0], (y * side + x) * 3);
  return sharp(px, { raw: { width: side, height: side, channels: 3 } })
    .png()
    .toBuffer();
}

test('a colour film gets one colour fraction, with or without the display copy', async () => {
  const film = await griddedFilm(1024, 32);
  const limits = { ...DEFAULT_LIMITS };
  const without = await decodeInput(film, { size: 32, limits, wantDisplay: false });
  const withDisplay = await decodeInput(film, { size: 32, limits, wantDisplay: true });
  assert.ok(withDisplay.display, 'the display copy is made when wanted');
  assert.equal(withDisplay.display.width, 512);
  assert.equal(typeof without.facts.colourFraction, 'number');
  assert.equal(withDisplay.facts.colourFraction, without.facts.colourFraction);
  // And a film that is coloured all over is seen so both ways.
  const red = await sharp({ create: { width: 300, height: 300, channels: 3, background: { r: 250, g: 10, b: 10 } } })
    .png()
    .toBuffer();
  for (const wantDisplay of [false, true]) {
    const d = await decodeInput(red, { size: 32, limits, wantDisplay });
    assert.ok((d.facts.colourFraction ?? 0) > 0.9, `red film, display ${wantDisplay}: ${d.facts.colourFraction}`);
  }
});
