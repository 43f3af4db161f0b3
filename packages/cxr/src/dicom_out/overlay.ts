// The heat map as a reader sees it in the PACS: the Grad-CAM overlay, a colour legend bar beside
// it and text lines (the caveat, the result) burned in below, since a secondary capture has no
// other place a viewer is sure to show. Text is SVG rendered by sharp (librsvg with the system
// fonts; setup installs DejaVu).
import sharp from 'sharp';
import { INFERNO } from '../explain/colormap';

export interface AnnotatedImage {
  /** width × height × 3, RGB interleaved. */
  rgb: Buffer;
  width: number;
  height: number;
}

const LEGEND_W = 84;
const FONT_PX = 13;
const LINE_PX = 18;
const PAD = 8;
/** Below this the text lines would wrap into too many rows. */
const MIN_WIDTH = 420;

/**
 * Characters XML 1.0 does not allow at all (C0 controls but tab, CR and LF; lone surrogates; U+FFFE, U+FFFF): not
 * even escaped. One in a model's name or version (cxr.json is any writer's) made librsvg refuse the whole SVG, and
 * the heat map was not stored at all.
 */
function xmlAllowed(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    const control = c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d;
    const surrogate = c >= 0xd800 && c <= 0xdfff; // alone: a pair is one code point here
    out += control || surrogate || c === 0xfffe || c === 0xffff ? '\ufffd' : ch;
  }
  return out;
}

function escapeXml(s: string): string {
  return xmlAllowed(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * Greedy word wrap to about `chars` characters a line (DejaVu Sans averages ~0.55 em a glyph). A no-break space
 * does not break: the result line keeps "p ≥ 15.7 %" and "18.0 %" whole, as the page does (result_words.ts).
 */
export function wrap(line: string, chars: number): string[] {
  const out: string[] = [];
  let cur = '';
  // Words of no-break spaces alone are no words. A word longer than a line is cut into lines: whole, a 10,000-
  // character name took librsvg seconds to lay out on one line, all but its start drawn past the image's edge.
  const words = line.split(/[^\S\u00a0]+/).filter((w) => /\S/.test(w));
  const width = Math.max(1, Math.floor(chars));
  for (const word of words.flatMap((w) => cutLong(w, width))) {
    if (cur && cur.length + 1 + word.length > width) {
      out.push(cur);
      cur = word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  if (cur) out.push(cur);
  return out;
}

/** `word` in pieces of at most `chars` UTF-16 units, a surrogate pair never split. */
function cutLong(word: string, chars: number): string[] {
  if (word.length <= chars) return [word];
  const pieces: string[] = [];
  for (let at = 0; at < word.length; ) {
    let end = Math.min(word.length, at + chars);
    const code = word.charCodeAt(end - 1);
    if (end < word.length && end - at > 1 && code >= 0xd800 && code <= 0xdbff) end--;
    pieces.push(word.slice(at, end));
    at = end;
  }
  return pieces;
}

/** White text with its baseline at (x, y); `content` is already XML. */
const svgText = (x: number, y: number, content: string) =>
  `<text x="${x}" y="${y}" font-family="DejaVu Sans" font-size="${FONT_PX}" fill="white">${content}</text>`;

function legendSvg(x: number, height: number): string {
  const top = PAD + LINE_PX;
  const barH = Math.max(40, height - top - LINE_PX - PAD);
  const stops: string[] = [];
  for (let i = 0; i <= 8; i++) {
    const k = Math.round((i / 8) * 255) * 3;
    stops.push(
      `<stop offset="${(1 - i / 8).toFixed(3)}" stop-color="rgb(${INFERNO[k]},${INFERNO[k + 1]},${INFERNO[k + 2]})"/>`,
    );
  }
  return (
    `<defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1">${stops.reverse().join('')}</linearGradient></defs>` +
    svgText(x + PAD, PAD + FONT_PX, 'Grad-CAM') +
    `<rect x="${x + PAD}" y="${top}" width="18" height="${barH}" fill="url(#g)" stroke="white" stroke-width="1"/>` +
    svgText(x + PAD + 24, top + FONT_PX, 'high') +
    svgText(x + PAD + 24, top + barH, 'low')
  );
}

/** The overlay PNG with a legend on the right and `lines` of text below, as raw RGB. */
export async function annotateHeatmap(overlayPng: Buffer, lines: string[]): Promise<AnnotatedImage> {
  const meta = await sharp(overlayPng).metadata();
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (!w || !h) throw new Error('heat map PNG has no size');
  const width = Math.max(w + LEGEND_W, MIN_WIDTH);
  const chars = Math.floor((width - 2 * PAD) / (FONT_PX * 0.6));
  const wrapped = lines.flatMap((l) => wrap(l, chars));
  const textTop = h + PAD;
  const height = textTop + wrapped.length * LINE_PX + PAD;
  const textSvg = wrapped.map((l, i) => svgText(PAD, textTop + FONT_PX + i * LINE_PX, escapeXml(l))).join('');
  const svg = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${legendSvg(w, h)}${textSvg}</svg>`,
  );
  const { data, info } = await sharp({ create: { width, height, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .composite([
      { input: overlayPng, left: 0, top: 0 },
      { input: svg, left: 0, top: 0 },
    ])
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`annotated heat map has ${info.channels} channels, expected 3`);
  return { rgb: data, width: info.width, height: info.height };
}
