// Text widths for vega's layout. Without a canvas package vega guesses 0.8 em per character,
// which truncates legends and pads titles with empty space; measuring with the real font keeps the
// charts tight. DejaVu Sans is what the PNGs are rendered with (Debian's fonts-dejavu-core).
import { readFileSync } from 'node:fs';
import * as opentype from 'opentype.js';

const FONT_DIRS = ['/usr/share/fonts/truetype/dejavu', '/usr/share/fonts/TTF', '/usr/share/fonts/dejavu'];
/** Average advance of DejaVu Sans text, in em, for when the font file is not there. */
const FALLBACK_EM = 0.6;

type Face = 'regular' | 'bold';
const FILES: Record<Face, string> = { regular: 'DejaVuSans.ttf', bold: 'DejaVuSans-Bold.ttf' };
const fonts = new Map<Face, opentype.Font | null>();

function load(face: Face): opentype.Font | null {
  if (!fonts.has(face)) {
    let font: opentype.Font | null = null;
    for (const dir of FONT_DIRS) {
      try {
        const buf = readFileSync(`${dir}/${FILES[face]}`);
        font = opentype.parse(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
        break;
      } catch {
        // try the next directory
      }
    }
    fonts.set(face, font);
  }
  return fonts.get(face)!;
}

/**
 * Width in pixels of `text` at `fontSize`. Glyph advances plus pair kerning, added by hand:
 * opentype.js's own shaper stops at DejaVu's contextual substitution tables.
 */
export function measureText(text: string, fontSize: number, bold = false): number {
  // Widths are linear in the size, so one cache entry per string and face serves every size.
  const key = `${bold ? 'b' : 'r'}${text}`;
  let em = cache.get(key);
  if (em === undefined) {
    em = measureEm(text, bold);
    if (cache.size > 5000) cache.clear();
    cache.set(key, em);
  }
  return em * fontSize;
}

const cache = new Map<string, number>();

function measureEm(text: string, bold: boolean): number {
  const font = load(bold ? 'bold' : 'regular');
  if (!font) return FALLBACK_EM * [...text].length;
  let units = 0;
  let prev: opentype.Glyph | null = null;
  for (const ch of text) {
    const glyph = font.charToGlyph(ch);
    units += glyph.advanceWidth ?? font.unitsPerEm * FALLBACK_EM;
    if (prev) units += font.getKerningValue(prev, glyph);
    prev = glyph;
  }
  return units / font.unitsPerEm;
}

/** The subset of a vega text item that decides its width. */
interface TextItem {
  fontSize?: number;
  fontWeight?: string | number;
  limit?: number;
}

const isBold = (w: string | number | undefined) =>
  w !== undefined && (w === 'bold' || w === 'bolder' || (Number(w) || 0) >= 600);

/**
 * A drop-in for vega's `textMetrics.width(item, text)`. Like vega's own measure it measures the
 * text as drawn, i.e. cut to `item.limit` with an ellipsis, so that bounds match what is rendered.
 */
export function vegaTextWidth(item: TextItem, text: unknown): number {
  const size = item.fontSize != null ? Number(item.fontSize) || 0 : 11;
  const s = text == null ? '' : String(text).trim();
  if (size <= 0 || s === '') return 0;
  const bold = isBold(item.fontWeight);
  const full = measureText(s, size, bold);
  const limit = Number(item.limit) || 0;
  if (limit <= 0 || full < limit) return full;
  const ellipsis = measureText('\u2026', size, bold);
  let lo = 0;
  let hi = s.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (measureText(s.slice(0, mid), size, bold) + ellipsis <= limit) lo = mid;
    else hi = mid - 1;
  }
  return measureText(s.slice(0, lo), size, bold) + ellipsis;
}
