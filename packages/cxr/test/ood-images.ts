// Images that are not chest X-rays, for the OOD tests: generated ones (always available) and
// real pictures found on the machine (photos only where a package that ships them is present).
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';

function rand(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const gray = (px: Uint8Array, w: number, h: number) =>
  sharp(px, { raw: { width: w, height: h, channels: 1 } })
    .png()
    .toBuffer();

/** Name -> PNG/JPEG bytes of generated non-X-ray images. */
export async function generatedNonXrays(): Promise<Record<string, Buffer>> {
  const r = rand(11);
  const w = 256,
    h = 256;
  const noise = Uint8Array.from({ length: w * h }, () => Math.floor(r() * 256));
  const colourNoise = Uint8Array.from({ length: w * h * 3 }, () => Math.floor(r() * 256));
  const checker = Uint8Array.from({ length: w * h }, (_, i) =>
    (((i % w) >> 5) + (Math.floor(i / w) >> 5)) % 2 ? 230 : 20,
  );
  const gradient = Uint8Array.from({ length: w * h * 3 }, (_, i) => {
    const p = Math.floor(i / 3),
      c = i % 3;
    return c === 0 ? p % w : c === 1 ? Math.floor(p / w) : 255 - (p % w);
  });
  const lines = Array.from(
    { length: 14 },
    (_, i) =>
      `<text x="16" y="${24 + i * 17}" font-family="DejaVu Sans" font-size="13">` +
      `Lorem ipsum dolor sit amet, consectetur ${i}</text>`,
  ).join('');
  const text = Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="260">' +
      `<rect width="100%" height="100%" fill="white"/>${lines}</svg>`,
  );
  return {
    'noise.png': await gray(noise, w, h),
    'blank-gray.png': await gray(new Uint8Array(w * h).fill(128), w, h),
    'blank-black.png': await gray(new Uint8Array(w * h), w, h),
    'blank-white.jpeg': await sharp(new Uint8Array(w * h).fill(255), { raw: { width: w, height: h, channels: 1 } })
      .jpeg()
      .toBuffer(),
    'checkerboard.png': await gray(checker, w, h),
    'colour-noise.png': await sharp(colourNoise, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toBuffer(),
    'colour-gradient.jpeg': await sharp(gradient, { raw: { width: w, height: h, channels: 3 } })
      .jpeg()
      .toBuffer(),
    'text-page.png': await sharp(text).flatten({ background: '#fff' }).png().toBuffer(),
  };
}

/** The negative of an image: an X-ray shown the wrong way round (e.g. MONOCHROME1 ignored). */
export function invertImage(bytes: Buffer): Promise<Buffer> {
  return sharp(bytes).negate({ alpha: false }).png().toBuffer();
}

/**
 * Real pictures on this machine: photographs from scikit-image's sample data (Debian package
 * python3-skimage, or a folder named by CXR_OOD_PHOTOS), plus screenshots and logos under
 * /usr/share. Absent ones are skipped.
 */
export function realNonXrays(): string[] {
  const dirs = [process.env.CXR_OOD_PHOTOS, '/usr/lib/python3/dist-packages/skimage/data'].filter(
    (d): d is string => !!d && fs.existsSync(d),
  );
  const photos = dirs.flatMap((d) =>
    fs
      .readdirSync(d)
      .filter((f) => /\.(png|jpe?g)$/i.test(f))
      .map((f) => path.join(d, f))
      .filter((f) => fs.statSync(f).size > 10_000),
  );
  const shared = [
    '/usr/share/doc/nodejs/contributing/doc_img/scatter-plot.png',
    '/usr/share/doc/nodejs/contributing/doc_img/compare-boxplot.png',
    '/usr/share/doc/python3-pip/html/topics/deps.png',
    '/usr/share/doc/valgrind/html/images/kcachegrind_xtree.png',
    '/usr/share/pixmaps/debian-logo.png',
    '/usr/share/pixmaps/chromium.png',
    '/usr/share/icons/Adwaita/512x512/places/folder-pictures.png',
  ].filter((f) => fs.existsSync(f));
  return [...photos, ...shared];
}
