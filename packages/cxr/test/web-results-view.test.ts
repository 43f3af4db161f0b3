// A result card on the Analyze page as a clinician reads it, in Chromium against a real server:
//  - the heat map has an on/off switch (a checkbox, worked with the keyboard) that hides the overlay, its opacity
//    slider and legend; on again, the slider works as before; the choice holds for the next film while the page is
//    open; axe-core finds nothing to report either way;
//  - a "Results" heading (h2, under the view's h1) leads a screen reader's heading list to the cards, whose file
//    names are its h3s; it is not drawn, and is not there while there are no results;
//  - on a wide screen the finding stands left of the image, so that Tab goes through the card in the order it is
//    seen: the finding's controls (left), then the heat map's (right); on a phone the finding is above the image.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { Locator, Page } from 'playwright-core';
import { XRAY_JPEG } from './serve-fixtures';
import { axeProblems, finished, noChromium, pageSuite, upload } from './browser-fixture';

const skip = noChromium || (fs.existsSync(XRAY_JPEG) ? false : `needs ${XRAY_JPEG}`);
// The page as the sources stand: the page tests before this one may have left an older build.
const suite = pageSuite('web-results-view', skip, { rebuild: true });

/** A real film analyzed on a fresh page; its card once the heat map is on it. */
async function analyzed(viewport = { width: 1280, height: 900 }): Promise<{ page: Page; errors: string[] }> {
  const opened = await suite.open({ viewport });
  await opened.page.setInputFiles('#file-input', [upload('film.jpeg', XRAY_JPEG)]);
  await finished(opened.page, 1);
  await opened.page.waitForSelector('.result .viewer:not([hidden]) img.heatmap[src]');
  return opened;
}

/** Tab from the card's start until focus is on `target` (at most 20 presses). */
async function tabTo(page: Page, card: Locator, target: Locator): Promise<void> {
  await card.focus();
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press('Tab');
    if (await target.evaluate((e) => e === document.activeElement)) return;
  }
  assert.fail('Tab never reached the heat map switch');
}

test('the heat map switches off and on from the keyboard, and stays as chosen for the next film', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page, errors } = await analyzed();
  const card = page.locator('.result').first();
  const toggle = card.getByRole('checkbox', { name: 'Show heat map' });
  const heat = card.locator('img.heatmap');
  const slider = card.getByRole('slider', { name: 'Heat map opacity' });
  assert.equal(await toggle.count(), 1, 'a switch for the heat map');
  assert.equal(await toggle.isChecked(), true, 'the heat map is on at first');
  assert.equal(await heat.isVisible(), true);
  await tabTo(page, card, toggle);
  await page.keyboard.press('Space');
  assert.equal(await toggle.isChecked(), false);
  assert.equal(await heat.isVisible(), false, 'off: no overlay');
  assert.equal(await slider.isVisible(), false, 'off: no opacity slider');
  assert.equal(await card.locator('.legend').isVisible(), false, 'off: no colour legend');
  assert.match((await card.locator('.viewer').getAttribute('aria-label')) ?? '', /: image$/);
  assert.deepEqual(await axeProblems(page), [], 'heat map off');
  await page.keyboard.press('Space');
  assert.equal(await toggle.isChecked(), true);
  assert.equal(await heat.isVisible(), true, 'on again: the overlay');
  assert.match((await card.locator('.viewer').getAttribute('aria-label')) ?? '', /: image with heat map$/);
  // The slider is the next stop and still sets the overlay's opacity.
  await page.keyboard.press('Tab');
  assert.equal(await slider.evaluate((e) => e === document.activeElement), true);
  await page.keyboard.press('ArrowRight');
  assert.equal(await heat.evaluate((e) => (e as HTMLElement).style.opacity), '0.66');
  assert.deepEqual(await axeProblems(page), [], 'heat map on');
  // Off again, and the next film comes without it: the choice holds while the page is open.
  await toggle.focus();
  await page.keyboard.press('Space');
  await page.setInputFiles('#file-input', [upload('next.jpeg', XRAY_JPEG)]);
  await finished(page, 2);
  const next = page.locator('.result').first();
  await page.waitForSelector('.result:first-child img.heatmap[src]', { state: 'attached' });
  assert.equal(await next.locator('.file-name').textContent(), 'next.jpeg');
  assert.equal(await next.getByRole('checkbox', { name: 'Show heat map' }).isChecked(), false);
  assert.equal(await next.locator('img.heatmap').isVisible(), false);
  await next.getByRole('checkbox', { name: 'Show heat map' }).check();
  assert.equal(await next.locator('img.heatmap').isVisible(), true);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('a "Results" heading leads to the cards in the heading outline, and is not drawn', {
  skip,
  timeout: 60_000,
}, async () => {
  const opened = await suite.open();
  const none = await opened.page.getByRole('heading', { name: 'Results' }).count();
  assert.equal(none, 0, 'no results, no heading leading to nothing');
  await opened.page.context().close();

  const { page } = await analyzed();
  const heading = page.getByRole('heading', { name: 'Results', exact: true });
  assert.equal(await heading.count(), 1);
  // The outline of the view as a screen reader lists it: no level skipped, the cards under "Results".
  const outline = await page.$$eval('#view-analyze :is(h1, h2, h3, h4)', (hs) =>
    hs.filter((h) => getComputedStyle(h).display !== 'none').map((h) => `${h.tagName} ${h.textContent?.trim()}`),
  );
  assert.deepEqual(outline, ['H1 Analyze images', 'H2 Intended use and limits', 'H2 Results', 'H3 film.jpeg']);
  const tree = await page.locator('#view-analyze').ariaSnapshot();
  assert.match(tree, /heading "Results" \[level=2\]/);
  assert.match(tree, /heading "film\.jpeg" \[level=3\]/);
  // Not drawn: the look of the view stays as it was.
  const box = (await heading.boundingBox())!;
  assert.ok(box.width <= 1 && box.height <= 1, JSON.stringify(box));
  await page.context().close();
});

test('on a wide screen the finding stands left of the image, and Tab goes through the card in that order', {
  skip,
  timeout: 60_000,
}, async () => {
  const { page } = await analyzed();
  const card = page.locator('.result').first();
  /** Every Tab stop in the card from its start, with where it stands and which side it belongs to. */
  const stops = async () => {
    await card.focus();
    const seen: { side: string; x: number; y: number }[] = [];
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press('Tab');
      const at = await page.evaluate(() => {
        const e = document.activeElement as HTMLElement;
        if (!e.closest('.result:first-child')) return null;
        const r = e.getBoundingClientRect();
        return { side: e.closest('.verdict') ? 'finding' : 'image', x: r.x, y: r.y + window.scrollY };
      });
      if (!at) break;
      seen.push(at);
    }
    return seen;
  };
  // Both read at once: the page may still be scrolling the new card into view.
  const boxes = () =>
    card.evaluate((c) => {
      const [finding, image] = ['.verdict', '.viewer'].map((s) => c.querySelector(s)!.getBoundingClientRect());
      return { finding: { x: finding.x, y: finding.y, bottom: finding.bottom }, image: { x: image.x, y: image.y } };
    });
  const wideBoxes = await boxes();
  assert.ok(
    wideBoxes.finding.x < wideBoxes.image.x,
    `wide: the finding left of the image ${JSON.stringify(wideBoxes)}`,
  );
  assert.ok(Math.abs(wideBoxes.finding.y - wideBoxes.image.y) < 1, `wide: side by side ${JSON.stringify(wideBoxes)}`);
  const wide = await stops();
  assert.deepEqual([...new Set(wide.map((s) => s.side))], ['finding', 'image'], JSON.stringify(wide));
  // What is seen first (the left column) is reached first: every finding stop left of every image stop.
  const leftmostImage = Math.min(...wide.filter((s) => s.side === 'image').map((s) => s.x));
  for (const s of wide.filter((w) => w.side === 'finding')) assert.ok(s.x < leftmostImage, JSON.stringify(wide));
  // A phone: one column, the finding above the image, Tab top to bottom.
  await page.setViewportSize({ width: 360, height: 740 });
  const narrowBoxes = await boxes();
  assert.ok(narrowBoxes.finding.bottom <= narrowBoxes.image.y + 1, `phone: ${JSON.stringify(narrowBoxes)}`);
  const narrow = await stops();
  assert.deepEqual([...new Set(narrow.map((s) => s.side))], ['finding', 'image'], JSON.stringify(narrow));
  for (let i = 1; i < narrow.length; i++) assert.ok(narrow[i].y >= narrow[i - 1].y, JSON.stringify(narrow));
  await page.context().close();
});
