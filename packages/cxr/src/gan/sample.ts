// `cxr gan sample`: N generated images of one class as PNG files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resizeSquare } from '../data/preprocess';
import { classIndex, CLASS_NAMES } from './config';
import { generate, loadGenerator } from './generator_io';
import { grayPng } from './grid';
import { makeDirs } from '../make_dirs';

export interface SampleOptions {
  ganModel: string;
  n: number;
  className: string;
  out: string;
  seed?: number;
  /** Resize the PNGs to this side (same squash/resize as the classifier's input). */
  size?: number;
}

export async function sampleToFiles(o: SampleOptions): Promise<string[]> {
  const cls = classIndex(o.className);
  const { model, meta } = await loadGenerator(o.ganModel);
  try {
    const seed = o.seed ?? 1;
    const pixels = generate(model, meta.zDim, Array(o.n).fill(cls), seed, ['sample', CLASS_NAMES[cls]]);
    makeDirs(o.out);
    const s = meta.size,
      size = o.size ?? s;
    const files: string[] = [];
    for (let i = 0; i < o.n; i++) {
      const tile = pixels.subarray(i * s * s, (i + 1) * s * s);
      const file = path.join(o.out, `${CLASS_NAMES[cls]}-s${seed}-${String(i + 1).padStart(4, '0')}.png`);
      fs.writeFileSync(file, await grayPng(size === s ? tile : resizeSquare(tile, s, s, size), size, size));
      files.push(file);
    }
    return files;
  } finally {
    model.dispose();
  }
}
