// The clinician's page, in Chromium against a real server (review s37):
//  - "Enlarge" shows the whole film in the window: at 80vh the dialog ran past a 1366×768 laptop's window (and a
//    phone held sideways), opened scrolled down to Close, the film's top (the lung apices) and its title out of
//    sight; the heat map stays laid exactly over the film, a square one (held by the window's height) and a wide
//    one (held by its width), and a long file name in the title wraps; a small film (the training set's 224 px, a
//    DICOM's thumbnail) is enlarged too, not shown at its own few pixels, smaller than on its card;
//  - a number is never parted from its unit at a line's end: on a phone the card's grey line read "137" at the end
//    of one line and "ms" at the start of the next; the heat map's slider reads "Heat map opacity" on one line;
//  - a film over the pixel limit says what to do, on the server and on this computer alike, and on this computer
//    in the server's words: it read "9000×9000 exceeds the 50000000-pixel limit", and neither said what to do.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { finished, noChromium, pageSuite, upload } from './browser-fixture';
import * as path from 'node:path';
import { DATA, DICOM_FILE, XRAY_JPEG, XRAY_JPEG_NORMAL } from './serve-fixtures';

const skip = noChromium;
const suite = pageSuite('page-s37', skip, { rebuild: true });

const card = '.result:first-child';
/** A film as the training set holds them, 224 px: smaller than a card shows it. */
const SMALL_JPEG = path.join(DATA, 'chest_xray', 'val', 'PNEUMONIA', 'person1946_bacteria_4874.jpeg');
/** A PACS export's name, one word too long for the large view's side column. */
const LONG_NAME = 'siim_1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.jpeg';

/** Where the large view's parts are, in the window's pixels. */
async function largeViewGeometry(page: Page) {
  return page.evaluate(() => {
    const box = (sel: string) => {
      const r = document.querySelector(sel)!.getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, left: r.left, width: r.width, height: r.height };
    };
    const dialog = document.querySelector('#heatmap-dialog') as HTMLDialogElement;
    return {
      windowHeight: document.documentElement.clientHeight,
      overflow: dialog.scrollHeight - dialog.clientHeight,
      dialog: box('#heatmap-dialog'),
      title: box('#heatmap-title'),
      titleCut:
        document.querySelector('#heatmap-title')!.scrollWidth > document.querySelector('#heatmap-title')!.clientWidth,
      film: box('#heatmap-image'),
      overlay: box('#large-overlay'),
      overlayShown: !(document.querySelector('#large-overlay') as HTMLImageElement).hidden,
      close: box('#heatmap-dialog .dialog-buttons button'),
    };
  });
}

for (const [width, height, what] of [
  [1366, 768, "a laptop's window"],
  [1280, 900, 'a desktop window'],
  [844, 390, 'a phone held sideways'],
  [768, 1024, 'a tablet held upright'],
  [390, 844, 'a phone'],
] as const) {
  test(`Enlarge shows the whole film, its title and Close in ${what} (${width}×${height})`, {
    skip,
    timeout: 120_000,
  }, async () => {
    const { page, errors } = await suite.open({ viewport: { width, height } });
    await page.uncheck('#local-mode');
    await page.fill('#patient-age', '3');
    const films = [
      upload('square.jpeg', XRAY_JPEG_NORMAL),
      upload(LONG_NAME, XRAY_JPEG),
      upload('small.jpeg', SMALL_JPEG),
      upload('film.dcm', DICOM_FILE),
    ];
    await page.setInputFiles('#file-input', films);
    await finished(page, films.length);
    for (let n = 1; n <= films.length; n++) {
      const film = `.result:nth-child(${n})`;
      assert.equal(await page.getAttribute(film, 'data-state'), 'done');
      const onCard = await page.$eval(`${film} img.original`, (e) => e.getBoundingClientRect().width);
      await page.click(`${film} .enlarge`);
      await page.waitForFunction(() => (document.querySelector('#heatmap-image') as HTMLImageElement).complete);
      const g = await largeViewGeometry(page);
      const where = `film ${n}: ${JSON.stringify(g)}`;
      assert.ok(g.overflow <= 1, `the dialog scrolls by ${g.overflow} px: ${where}`);
      assert.ok(g.title.top >= g.dialog.top && g.title.top >= 0, `the title is out of sight: ${where}`);
      assert.equal(g.titleCut, false, `the title runs out of its box: ${where}`);
      assert.ok(g.film.top >= 0 && g.film.top >= g.dialog.top, `the film's top is cut off: ${where}`);
      assert.ok(g.film.bottom <= g.windowHeight && g.film.bottom <= g.dialog.bottom, `its foot is cut: ${where}`);
      assert.ok(g.close.bottom <= g.windowHeight, `Close is out of sight: ${where}`);
      // Still a large view: the film takes most of the window's height or width, not a thumbnail's, and is not
      // smaller than on its card (a 224 px film, and a DICOM's thumbnail, were shown at their own few pixels).
      assert.ok(g.film.height >= 0.55 * g.windowHeight || g.film.width >= 0.6 * width, `a small film: ${where}`);
      // (Where the window is too low for the card's size, as the window's height allows; on a phone the dialog's
      // padding takes a few pixels.)
      const held = g.film.height >= 0.75 * g.windowHeight;
      assert.ok(g.film.width >= 0.9 * onCard || held, `smaller than on its card (${onCard} px): ${where}`);
      // The heat map lies exactly over the film.
      assert.equal(g.overlayShown, true, 'the heat map is laid over the film');
      for (const k of ['top', 'left', 'width', 'height'] as const)
        assert.ok(Math.abs(g.overlay[k] - g.film[k]) < 1, `the heat map's ${k} is not the film's: ${where}`);
      await page.keyboard.press('Escape');
      await page.waitForFunction(() => !(document.querySelector('#heatmap-dialog') as HTMLDialogElement).open);
    }
    assert.deepEqual(errors, []);
    await page.context().close();
  });
}

test("a number keeps its unit, and the opacity slider's label its words, on a phone's card", {
  skip,
  timeout: 120_000,
}, async () => {
  const { page, errors } = await suite.open({ viewport: { width: 390, height: 800 } });
  await page.uncheck('#local-mode');
  await page.setInputFiles('#file-input', [upload('film.jpeg', XRAY_JPEG_NORMAL)]);
  await finished(page, 1);
  const meta = (await page.textContent(`${card} .meta`)) ?? '';
  // A space the line may break at between a number and "ms" is what let "ms" start a line of its own.
  assert.ok(/\d\u00a0ms\b/.test(meta), `the time is not bound to its unit: ${meta}`);
  assert.ok(!/\d ms\b/.test(meta), `a breakable space before "ms": ${meta}`);
  // The slider's label on one line: "Heat map" ended the line of "Show heat map", "opacity" began the next.
  const lines = await page.$eval(`${card} .opacity-label`, (label) => {
    const range = document.createRange();
    range.selectNodeContents(label.firstChild!);
    return new Set(Array.from(range.getClientRects(), (r) => Math.round(r.top))).size;
  });
  assert.equal(lines, 1, '"Heat map opacity" is parted over two lines');
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('a film over the pixel limit says so in megapixels and what to do, on the server and on this computer', {
  skip,
  timeout: 180_000,
}, async () => {
  // 9000×9000 of one grey: 81 megapixels in a few kilobytes, under any byte limit.
  const huge = await sharp({ create: { width: 9000, height: 9000, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
  const { page } = await suite.open();
  const said = (n: number) => page.textContent(`.result:nth-child(${n}) .warnings`).then((t) => (t ?? '').trim());
  const advice = 'Export a smaller copy of the image (e.g. a JPEG of the film) and analyze that.';
  await page.uncheck('#local-mode');
  await page.setInputFiles('#file-input', [upload('huge.png', huge)]);
  await finished(page, 1);
  let words = await said(1);
  assert.ok(words.startsWith('image is 9000×9000 (81 megapixels), over the 50-megapixel limit'), words);
  assert.ok(words.endsWith(advice), `the server's refusal does not say what to do: ${words}`);

  await page.check('#local-mode');
  await page.waitForFunction(() => /Model loaded/.test(document.querySelector('#status')?.textContent ?? ''), null, {
    timeout: 90_000,
  });
  await page.setInputFiles('#file-input', [upload('huge.png', huge)]);
  await finished(page, 2);
  words = await said(1);
  assert.ok(words.startsWith('image is 9000×9000 (81 megapixels), over the 50-megapixel limit'), words);
  assert.ok(words.endsWith(advice), `this computer's refusal does not say what to do: ${words}`);
  await page.context().close();
});
