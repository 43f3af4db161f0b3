// Does the generator copy its training images? For generated samples, the distance to the
// nearest training image, set against two yardsticks from real data at the same size:
//   train -> train  each training image's nearest training image of ANOTHER child (the same
//                   child's other X-rays are near-duplicates and would make the bar too low);
//   val -> train    each validation image's nearest training image: how far a new, unseen
//                   child's X-ray typically lands from the training set.
// A generator that generalises should sit near val -> train; one that memorises puts samples
// much closer to a training image than real different children ever are (below the 5th
// percentile of train -> train). pairs.png shows each sample above its nearest training image.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { createRng, shuffleInPlace } from '../data/random';
import type { ImageSet } from '../data/images';
import { CLASS_NAMES } from './config';
import { generate } from './generator_io';
import { tilesOf, writeGrid } from './grid';
import { nearest, Spread, spread } from './nearest';
import { makeDirs } from '../make_dirs';

export interface MemorisationOptions {
  /** Samples per class. */
  perClass?: number;
  /** At most this many real images as queries for each yardstick. */
  maxQueries?: number;
  seed?: number;
  /** Pairs per row in pairs.png. */
  cols?: number;
}

export interface MemorisationSummary {
  size: number;
  metric: string;
  samples: Spread & { byClass: Record<string, Spread> };
  trainToTrain: Spread;
  valToTrain: Spread;
  /** Share of samples closer to a training image than the 5th percentile of train -> train. */
  closerThanTrainP05: number;
  /** median(samples) / median(val -> train): about 1 when samples are as novel as new X-rays. */
  medianRatioToVal: number;
  verdict: string;
  pairs: Array<{ class: string; distance: number; nearest: string; nearestClass: string }>;
  files: { pairs: string; summary: string; markdown: string };
}

function pick(n: number, k: number, seed: number, name: string): number[] {
  const all = Array.from({ length: n }, (_, i) => i);
  return k >= n
    ? all
    : shuffleInPlace(all, createRng(seed, 'memorisation', name))
        .slice(0, k)
        .sort((a, b) => a - b);
}

function gather(set: ImageSet, indices: readonly number[]): Uint8Array {
  const per = set.size * set.size;
  const out = new Uint8Array(indices.length * per);
  indices.forEach((src, i) => out.set(set.pixels.subarray(src * per, (src + 1) * per), i * per));
  return out;
}

export async function memorisationCheck(
  g: tfl.LayersModel,
  zDim: number,
  train: ImageSet,
  val: ImageSet | null,
  outDir: string,
  o: MemorisationOptions = {},
): Promise<MemorisationSummary> {
  const perClass = o.perClass ?? 16;
  const maxQueries = o.maxQueries ?? 400;
  const seed = o.seed ?? 1;
  const cols = o.cols ?? 8;
  const size = train.size;
  const dim = size * size;
  const nTrain = train.labels.length;
  if (g.outputs[0].shape[1] !== size)
    throw new Error(`generator makes ${g.outputs[0].shape[1]}px images, training set is ${size}px`);

  const labels = [...Array(perClass).fill(0), ...Array(perClass).fill(1)];
  const samples = new Uint8Array(labels.length * dim);
  for (const cls of [0, 1]) {
    samples.set(
      generate(g, zDim, Array(perClass).fill(cls), seed, ['memorisation', CLASS_NAMES[cls]]),
      cls * perClass * dim,
    );
  }
  const sampleNn = nearest(samples, labels.length, train.pixels, nTrain, dim);

  const tq = pick(nTrain, maxQueries, seed, 'train');
  const trainNn = nearest(
    gather(train, tq),
    tq.length,
    train.pixels,
    nTrain,
    dim,
    (q, r) => train.patients[r] === train.patients[tq[q]],
  );
  const vq = val ? pick(val.labels.length, maxQueries, seed, 'val') : [];
  const valNn = val ? nearest(gather(val, vq), vq.length, train.pixels, nTrain, dim) : null;

  const trainSpread = spread(trainNn.distance);
  const valSpread = valNn ? spread(valNn.distance) : spread([]);
  const all = spread(sampleNn.distance);
  const byClass = Object.fromEntries(
    [0, 1].map((c) => [CLASS_NAMES[c], spread(sampleNn.distance.subarray(c * perClass, (c + 1) * perClass))]),
  );
  const closer = Array.from(sampleNn.distance).filter((d) => d < trainSpread.p05).length / labels.length;
  const ratio = all.median / valSpread.median;
  const verdict =
    closer > 0.1 || ratio < 0.6
      ? 'POSSIBLE MEMORISATION: samples sit closer to individual training images ' +
        'than real X-rays of different children do; inspect pairs.png'
      : 'no sign of memorisation at pixel level: ' +
        'samples are about as far from the training set as real X-rays of other children';

  makeDirs(outDir);
  const files = {
    pairs: path.join(outDir, 'pairs.png'),
    summary: path.join(outDir, 'summary.json'),
    markdown: path.join(outDir, 'summary.md'),
  };
  const sampleTiles = tilesOf(samples, labels.length, size);
  const rows: Uint8Array[][] = [];
  for (let i = 0; i < labels.length; i += cols) {
    const idx = Array.from({ length: Math.min(cols, labels.length - i) }, (_, k) => i + k);
    rows.push(idx.map((k) => sampleTiles[k]));
    rows.push(idx.map((k) => train.pixels.subarray(sampleNn.index[k] * dim, (sampleNn.index[k] + 1) * dim)));
  }
  await writeGrid(files.pairs, rows, size);

  const summary: MemorisationSummary = {
    size,
    metric: `RMS grey-level difference (0-255) at ${size}x${size} px`,
    samples: { ...all, byClass },
    trainToTrain: trainSpread,
    valToTrain: valSpread,
    closerThanTrainP05: closer,
    medianRatioToVal: ratio,
    verdict,
    pairs: labels.map((c, k) => ({
      class: CLASS_NAMES[c],
      distance: sampleNn.distance[k],
      nearest: train.files[sampleNn.index[k]],
      nearestClass: CLASS_NAMES[train.labels[sampleNn.index[k]]],
    })),
    files,
  };
  fs.writeFileSync(files.summary, JSON.stringify(summary, null, 2) + '\n');
  fs.writeFileSync(files.markdown, markdown(summary, cols));
  return summary;
}

function markdown(s: MemorisationSummary, cols: number): string {
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
  const row = (name: string, v: Spread) =>
    `| ${name} | ${v.n} | ${f(v.min)} | ${f(v.p05)} | ${f(v.median)} | ${f(v.mean)} |`;
  const ratio = Number.isFinite(s.medianRatioToVal) ? s.medianRatioToVal.toFixed(2) : '–';
  return [
    '# GAN memorisation check',
    '',
    `Distance to the nearest training image, ${s.metric}.`,
    '',
    '| queries | n | min | 5th pct | median | mean |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    row('generated samples', s.samples),
    ...Object.entries(s.samples.byClass).map(([c, v]) => row(`&nbsp;&nbsp;${c}`, v)),
    row('training images (nearest other child)', s.trainToTrain),
    row('validation images', s.valToTrain),
    '',
    `- Samples closer than the 5th percentile of training -> training: ${(s.closerThanTrainP05 * 100).toFixed(0)}%`,
    `- Median sample distance / median validation distance: ${ratio}`,
    `- Verdict: ${s.verdict}`,
    '',
    `![pairs](pairs.png)`,
    '',
    `pairs.png: rows of ${cols} generated samples (NORMAL first, then PNEUMONIA), ` +
      'each above its nearest training image.',
    '',
  ].join('\n');
}
