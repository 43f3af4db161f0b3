// Vega-Lite spec -> SVG (vega's headless renderer) -> PNG (sharp, through librsvg and fontconfig:
// the machine needs a font, Debian's fonts-dejavu-core, or the PNGs come out without text).
import { writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { vegaTextWidth } from './text_metrics';
export type ChartSpec = import('vega-lite', { with: { 'resolution-mode': 'import' }}).TopLevelSpec;

/** vega and vega-lite ship only as ES modules; this CommonJS package loads them on first use. */
async function libraries() {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  // vega documents replacing this function as the way to measure text without a canvas.
  (vega as unknown as { textMetrics: { width: typeof vegaTextWidth } }).textMetrics.width = vegaTextWidth;
  return { vega, vl };
}

export async function renderSvg(spec: ChartSpec): Promise<string> {
  const { vega, vl } = await libraries();
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rendered at twice the SVG's nominal size so that the PNG stays sharp on high-density screens. */
export async function svgToPng(svg: string, scale = 2): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: 72 * scale })
    .png()
    .toBuffer();
}

/** Writes `<base>.svg` and `<base>.png`; returns the SVG text (for inlining) and both paths. */
export async function writeChart(spec: ChartSpec, base: string): Promise<{ svg: string; files: [string, string] }> {
  const svg = await renderSvg(spec);
  const png = await svgToPng(svg);
  await Promise.all([writeFile(`${base}.svg`, svg), writeFile(`${base}.png`, png)]);
  return { svg, files: [`${base}.svg`, `${base}.png`] };
}
