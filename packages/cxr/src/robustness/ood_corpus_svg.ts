// SVG drawings of things that are not chest X-rays, for the OOD gate's refusal benchmark
// (robustness/ood_corpus.ts renders them). Every drawing is a pure function of a seeded random
// stream, so the corpus is the same on every machine that has the same fonts (DejaVu).
import { type Rng, uniform } from '../data/random';

const pick = <T>(rand: Rng, items: readonly T[]): T => items[Math.floor(rand() * items.length)];
const int = (rand: Rng, lo: number, hi: number) => Math.floor(uniform(rand, lo, hi + 1));
const hsl = (h: number, s: number, l: number) => `hsl(${h.toFixed(0)},${s.toFixed(0)}%,${l.toFixed(0)}%)`;

const WORDS = (
  'the of patient report date results total amount invoice account please note section table value ' +
  'summary order number address phone review status meeting agenda project budget figure data model ' +
  'page item price quantity signature approved received shipping method reference policy terms notice'
).split(' ');

const CODE = [
  'function main(args) {',
  '  const total = items.reduce((a, b) => a + b, 0);',
  '  if (total > limit) return null;',
  '  for (let i = 0; i < n; i++) {',
  '    out.push(values[i] * scale);',
  '  }',
  '}',
  'import { readFile } from "node:fs";',
  'export class Cache extends Map {',
  '  // keep the newest entries only',
  'def train(model, data, epochs=10):',
  '    return model.fit(data)',
];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function words(rand: Rng, n: number): string {
  return Array.from({ length: n }, () => pick(rand, WORDS)).join(' ');
}

/** One SVG element from its attributes (numbers to 2 decimals), optionally with content. */
export function el(tag: string, attrs: Record<string, string | number>, content?: string): string {
  const a = Object.entries(attrs)
    .map(([k, v]) => `${k}="${typeof v === 'number' ? Math.round(v * 100) / 100 : v}"`)
    .join(' ');
  return content === undefined ? `<${tag} ${a}/>` : `<${tag} ${a}>${content}</${tag}>`;
}

const FULL = { width: '100%', height: '100%' };
const stops = (c1: string, c2: string) =>
  el('stop', { offset: 0, 'stop-color': c1 }) + el('stop', { offset: 1, 'stop-color': c2 });

const svg = (w: number, h: number, body: string) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${body}</svg>`;

/** A fractal-noise texture over the whole picture (grass, clouds, wood), as an SVG filter. */
function texture(rand: Rng, id: string, opacity: number): { defs: string; use: string } {
  const freq = uniform(rand, 0.005, 0.06).toFixed(4);
  return {
    defs:
      `<filter id="${id}"><feTurbulence type="fractalNoise" baseFrequency="${freq}" numOctaves="4" ` +
      `seed="${int(rand, 1, 999)}"/><feColorMatrix type="saturate" values="0"/></filter>`,
    use: `<rect width="100%" height="100%" filter="url(#${id})" opacity="${opacity.toFixed(2)}"/>`,
  };
}

/** An outdoor scene: sky, sun or clouds, hills, trees, a textured ground. */
export function scene(rand: Rng, w: number, h: number): string {
  const skyHue = uniform(rand, 190, 230);
  const horizon = h * uniform(rand, 0.35, 0.65);
  const t = texture(rand, 't', uniform(rand, 0.2, 0.5));
  const sky = stops(hsl(skyHue, 70, 45), hsl(skyHue, 60, 85));
  let body =
    el('defs', {}, el('linearGradient', { id: 'sky', x1: 0, y1: 0, x2: 0, y2: 1 }, sky) + t.defs) +
    el('rect', { ...FULL, fill: 'url(#sky)' });
  if (rand() < 0.6)
    body += `<circle cx="${uniform(rand, 0, w)}" cy="${horizon * 0.3}" r="${h * 0.06}" fill="#ffe9a0"/>`;
  for (let i = int(rand, 0, 4); i > 0; i--) {
    const cloud = { cx: uniform(rand, 0, w), cy: uniform(rand, 0, horizon * 0.6), rx: w * uniform(rand, 0.05, 0.15) };
    body += el('ellipse', { ...cloud, ry: h * 0.04, fill: 'white', opacity: 0.8 });
  }
  for (let layer = 0; layer < 3; layer++) {
    const base = horizon + layer * (h - horizon) * 0.2;
    const pts = [`0,${h}`];
    for (let x = 0; x <= w; x += w / 8) pts.push(`${x.toFixed(0)},${(base - uniform(rand, 0, h * 0.15)).toFixed(0)}`);
    pts.push(`${w},${h}`);
    const hue = pick(rand, [95, 110, 35, 25, 120]);
    body += `<polygon points="${pts.join(' ')}" fill="${hsl(hue, uniform(rand, 30, 60), 25 + layer * 10)}"/>`;
  }
  for (let i = int(rand, 0, 6); i > 0; i--) {
    const x = uniform(rand, 0, w);
    const y = uniform(rand, horizon, h);
    const s = uniform(rand, 0.03, 0.1) * h;
    body += `<rect x="${x - s * 0.1}" y="${y - s}" width="${s * 0.2}" height="${s}" fill="#5a3d22"/>`;
    body += `<circle cx="${x}" cy="${y - s * 1.2}" r="${s * 0.6}" fill="${hsl(uniform(rand, 80, 140), 50, 25)}"/>`;
  }
  return svg(w, h, body + t.use);
}

/** Objects on a table: fruit, boxes and mugs with shading and shadows. */
export function objects(rand: Rng, w: number, h: number): string {
  const wall = hsl(uniform(rand, 0, 360), uniform(rand, 10, 40), uniform(rand, 55, 85));
  const table = hsl(uniform(rand, 20, 40), uniform(rand, 30, 60), uniform(rand, 25, 50));
  const t = texture(rand, 'wood', 0.25);
  let body =
    `<defs>${t.defs}` +
    el(
      'radialGradient',
      { id: 'shine', cx: 0.35, cy: 0.35, r: 0.7 },
      el('stop', { offset: 0, 'stop-color': 'white', 'stop-opacity': 0.6 }) +
        el('stop', { offset: 1, 'stop-color': 'black', 'stop-opacity': 0.3 }),
    ) +
    '</defs>' +
    el('rect', { ...FULL, fill: wall }) +
    el('rect', { y: h * 0.55, width: '100%', height: h * 0.45, fill: table });
  for (let i = int(rand, 2, 6); i > 0; i--) {
    const x = uniform(rand, 0.1, 0.9) * w;
    const y = uniform(rand, 0.6, 0.85) * h;
    const s = uniform(rand, 0.06, 0.16) * Math.min(w, h);
    const c = hsl(uniform(rand, 0, 360), uniform(rand, 55, 90), uniform(rand, 35, 60));
    body += `<ellipse cx="${x + s * 0.3}" cy="${y + s * 0.9}" rx="${s}" ry="${s * 0.25}" fill="black" opacity="0.3"/>`;
    const shape = int(rand, 0, 2);
    if (shape === 0) {
      body += el('circle', { cx: x, cy: y, r: s, fill: c }) + el('circle', { cx: x, cy: y, r: s, fill: 'url(#shine)' });
    } else if (shape === 1) {
      body += `<rect x="${x - s}" y="${y - 1.5 * s}" width="${2 * s}" height="${2.4 * s}" fill="${c}"/>`;
      const lid = [
        [x - s, y - 1.5 * s],
        [x - s * 0.6, y - 1.9 * s],
        [x + s * 1.4, y - 1.9 * s],
        [x + s, y - 1.5 * s],
      ];
      body += el('polygon', {
        points: lid.map((q) => q.map((v) => v.toFixed(1)).join(',')).join(' '),
        fill: c,
        opacity: 0.7,
      });
    } else {
      body += el('rect', { x: x - s * 0.7, y: y - s * 1.4, width: 1.4 * s, height: 2 * s, rx: s * 0.2, fill: c });
      body += el('circle', {
        cx: x + s * 0.9,
        cy: y - s * 0.5,
        r: s * 0.4,
        fill: 'none',
        stroke: c,
        'stroke-width': s * 0.15,
      });
      body += `<ellipse cx="${x}" cy="${y - s * 1.4}" rx="${s * 0.7}" ry="${s * 0.15}" fill="#222"/>`;
    }
  }
  return svg(w, h, body + t.use);
}

/** A page of text: a letter, a form with boxes, or a table; black on white, sometimes a scan's tint. */
export function documentPage(rand: Rng, w: number, h: number): string {
  const font = pick(rand, ['DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono']);
  const fs = Math.max(9, Math.round(h * uniform(rand, 0.016, 0.03)));
  const paper = rand() < 0.7 ? '#ffffff' : hsl(45, 20, uniform(rand, 85, 95));
  const m = w * 0.08;
  let body = `<rect width="100%" height="100%" fill="${paper}"/>`;
  const title = escapeXml(words(rand, 3).toUpperCase());
  body += el(
    'text',
    { x: m, y: m + fs * 1.5, 'font-family': font, 'font-size': fs * 1.6, 'font-weight': 'bold' },
    title,
  );
  let y = m + fs * 4;
  const layout = int(rand, 0, 2);
  while (y < h - m) {
    if (layout === 1 && rand() < 0.5) {
      // a form field: label, an answer box, a check box
      body += `<text x="${m}" y="${y}" font-family="${font}" font-size="${fs}">${escapeXml(words(rand, 2))}:</text>`;
      body += `<rect x="${w * 0.4}" y="${y - fs}" width="${w * 0.5}" height="${fs * 1.4}" fill="none" stroke="#333"/>`;
      if (rand() < 0.3)
        body += `<rect x="${w * 0.92}" y="${y - fs}" width="${fs}" height="${fs}" fill="none" stroke="#333"/>`;
      y += fs * 2.2;
    } else if (layout === 2) {
      // a table: header row shaded, grid lines, numbers
      const cols = int(rand, 3, 6);
      const cw = (w - 2 * m) / cols;
      if (y === m + fs * 4)
        body += `<rect x="${m}" y="${y - fs * 1.2}" width="${w - 2 * m}" height="${fs * 1.6}" fill="#ddd"/>`;
      for (let c = 0; c < cols; c++) {
        const cell = c === 0 ? pick(rand, WORDS) : (rand() * 1000).toFixed(int(rand, 0, 2));
        body += `<text x="${m + c * cw + 4}" y="${y}" font-family="${font}" font-size="${fs}">${cell}</text>`;
      }
      body += `<line x1="${m}" y1="${y + fs * 0.5}" x2="${w - m}" y2="${y + fs * 0.5}" stroke="#555"/>`;
      y += fs * 1.8;
    } else {
      const len = int(rand, 6, Math.max(7, Math.floor((w - 2 * m) / (fs * 3.2))));
      body += `<text x="${m}" y="${y}" font-family="${font}" font-size="${fs}">${escapeXml(words(rand, len))}</text>`;
      y += fs * (rand() < 0.12 ? 2.8 : 1.45);
    }
  }
  const tilt = rand() < 0.3 ? uniform(rand, -2, 2) : 0;
  return svg(
    w,
    h,
    `<rect width="100%" height="100%" fill="${paper}"/><g transform="rotate(${tilt} ${w / 2} ${h / 2})">${body}</g>`,
  );
}

/** A screen: a desktop with windows (title bars, buttons, lists) or a code editor. */
export function screenshot(rand: Rng, w: number, h: number): string {
  const dark = rand() < 0.5;
  const fs = Math.max(9, Math.round(h * uniform(rand, 0.018, 0.028)));
  let body = el('rect', { ...FULL, fill: hsl(uniform(rand, 0, 360), uniform(rand, 0, 50), dark ? 15 : 70) });
  body += `<rect width="100%" height="${fs * 1.8}" fill="${dark ? '#222' : '#eee'}"/>`;
  for (let i = int(rand, 1, 3); i > 0; i--) {
    const x = uniform(rand, 0, 0.3) * w;
    const y = uniform(rand, 0.05, 0.3) * h;
    const ww = uniform(rand, 0.5, 0.9) * w;
    const wh = uniform(rand, 0.4, 0.9) * h;
    const bg = dark ? '#1e1e1e' : '#fafafa';
    const fg = dark ? '#d4d4d4' : '#202020';
    body += `<rect x="${x + 6}" y="${y + 6}" width="${ww}" height="${wh}" fill="black" opacity="0.25"/>`;
    body += `<rect x="${x}" y="${y}" width="${ww}" height="${wh}" fill="${bg}" stroke="#888"/>`;
    body += el('rect', { x, y, width: ww, height: fs * 2, fill: hsl(uniform(rand, 190, 230), 50, dark ? 30 : 55) });
    for (const [k, c] of ['#ff5f57', '#febc2e', '#28c840'].entries()) {
      body += `<circle cx="${x + fs * (1 + 1.3 * k)}" cy="${y + fs}" r="${fs * 0.4}" fill="${c}"/>`;
    }
    const side = rand() < 0.5 ? ww * 0.25 : 0;
    if (side)
      body += el('rect', { x, y: y + fs * 2, width: side, height: wh - fs * 2, fill: dark ? '#252526' : '#e8e8e8' });
    let ly = y + fs * 3.5;
    const code = rand() < 0.5;
    let line = int(rand, 0, CODE.length - 1);
    while (ly < y + wh - fs) {
      const text = code ? CODE[line++ % CODE.length] : words(rand, int(rand, 2, 8));
      const colour = code && rand() < 0.4 ? hsl(uniform(rand, 0, 360), 60, dark ? 65 : 40) : fg;
      const family = code ? 'DejaVu Sans Mono' : 'DejaVu Sans';
      const at = { x: x + side + fs, y: ly, 'font-family': family, 'font-size': fs, fill: colour };
      body += el('text', { ...at, 'xml:space': 'preserve' }, escapeXml(text));
      if (!code && rand() < 0.15) {
        body += el('rect', {
          x: x + ww - fs * 7,
          y: ly - fs,
          width: fs * 5.5,
          height: fs * 1.5,
          rx: 4,
          fill: hsl(210, 70, 50),
        });
      }
      ly += fs * 1.6;
    }
  }
  return svg(w, h, body);
}

/** Synthetic signals with no content: gradients, stripes, checkerboards, rings, plain noise texture. */
export function pattern(rand: Rng, w: number, h: number): string {
  const c1 = hsl(uniform(rand, 0, 360), rand() < 0.5 ? 0 : 70, uniform(rand, 5, 95));
  const c2 = hsl(uniform(rand, 0, 360), rand() < 0.5 ? 0 : 70, uniform(rand, 5, 95));
  const kind = int(rand, 0, 4);
  if (kind === 0) {
    return svg(
      w,
      h,
      el('defs', {}, el('linearGradient', { id: 'g', x1: 0, y1: 0, x2: rand(), y2: rand() }, stops(c1, c2))) +
        el('rect', { ...FULL, fill: 'url(#g)' }),
    );
  }
  if (kind === 1) {
    const p = uniform(rand, 8, 80);
    return svg(
      w,
      h,
      el(
        'defs',
        {},
        el(
          'pattern',
          { id: 'p', width: 2 * p, height: 2 * p, patternUnits: 'userSpaceOnUse' },
          el('rect', { width: p, height: p, fill: c1 }) + el('rect', { x: p, y: p, width: p, height: p, fill: c1 }),
        ),
      ) +
        el('rect', { ...FULL, fill: c2 }) +
        el('rect', { ...FULL, fill: 'url(#p)' }),
    );
  }
  if (kind === 2) {
    let body = `<rect width="100%" height="100%" fill="${c2}"/>`;
    const p = uniform(rand, 6, 60);
    for (let x = 0; x < w; x += 2 * p) body += `<rect x="${x}" width="${p}" height="100%" fill="${c1}"/>`;
    return svg(w, h, body);
  }
  if (kind === 3) {
    return svg(
      w,
      h,
      el(
        'defs',
        {},
        el('radialGradient', { id: 'r', spreadMethod: 'repeat', r: uniform(rand, 0.05, 0.5) }, stops(c1, c2)),
      ) + el('rect', { ...FULL, fill: 'url(#r)' }),
    );
  }
  const t = texture(rand, 'n', 1);
  return svg(w, h, `<defs>${t.defs}</defs><rect width="100%" height="100%" fill="${c1}"/>${t.use}`);
}
