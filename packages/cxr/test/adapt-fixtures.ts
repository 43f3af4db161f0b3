// Sites for the adaptation tests: real training films copied at 256 px into a temp folder as
// they are ("site A") and with a acquisition-like shift ("site B": lower contrast, brighter,
// a gamma curve), in NORMAL/ and PNEUMONIA/ sub-folders so that `cxr evaluate` can read them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Predictor } from '../src/predict/predictor';
import { readSiteFilms } from '../src/adapt/films';
import { writeBnReference } from '../src/models/bn_reference';
import { loadModel } from '../src/models/io';
import { CHEST_XRAY, makeSeededModel } from './ood-fixtures';

export interface Sites {
  a: string;
  b: string;
  /** Film names (relative), the same in both sites. */
  films: string[];
}

/** Site B's pixel mapping: v -> 255 (0.55 (v/255)^0.7) + 70. */
export function shiftPixel(v: number): number {
  return Math.min(255, Math.round(255 * 0.55 * (v / 255) ** 0.7 + 70));
}

/** `perClass` films of each class from the training folder, spread over it, written to both sites. */
export async function makeSites(root: string, perClass: number): Promise<Sites> {
  const lut = Uint8Array.from({ length: 256 }, (_, v) => shiftPixel(v));
  const films: string[] = [];
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    const dir = path.join(CHEST_XRAY, 'train', cls);
    const all = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.jpeg'))
      .sort();
    const step = Math.floor(all.length / perClass);
    for (const site of ['a', 'b']) fs.mkdirSync(path.join(root, site, cls), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const name = path.join(cls, all[i * step].replace(/\.jpeg$/, '.png'));
      const { data, info } = await sharp(path.join(dir, all[i * step]))
        .grayscale()
        .resize(256, 256, { fit: 'fill' })
        .raw()
        .toBuffer({ resolveWithObject: true });
      const raw = { raw: { width: info.width, height: info.height, channels: 1 as const } };
      await sharp(data, raw)
        .png()
        .toFile(path.join(root, 'a', name));
      await sharp(
        data.map((v) => lut[v]),
        raw,
      )
        .png()
        .toFile(path.join(root, 'b', name));
      films.push(name);
    }
  }
  return { a: path.join(root, 'a'), b: path.join(root, 'b'), films };
}

/** A model's logits for the films of a site folder whose names start with `prefix` (a class), in film order. */
export async function siteLogits(modelDir: string, dir: string, sites: Sites, prefix = ''): Promise<number[]> {
  const p = await Predictor.load(modelDir, { warmUp: false });
  try {
    const out: number[] = [];
    for (const f of sites.films.filter((n) => n.startsWith(prefix)))
      out.push((await p.predict(fs.readFileSync(path.join(dir, f)))).logit);
    return out;
  } finally {
    p.dispose();
  }
}

/**
 * A seeded 64 px model in `dir` with reference statistics measured on site A's films, as training measures them
 * on the validation films: the source of relative adaptation.
 */
export async function seededWithReference(dir: string, sites: Sites, seed = 1): Promise<string> {
  await makeSeededModel(dir, { inputSize: 64, seed });
  const p = await Predictor.load(dir, { warmUp: false });
  const films = await readSiteFilms(p, sites.a);
  p.dispose();
  const loaded = await loadModel(dir);
  await writeBnReference(dir, loaded.members, [dir], {
    pixels: films.pixels,
    n: films.files.length,
    size: films.size,
    source: 'site A',
  });
  loaded.members[0].dispose();
  return dir;
}
