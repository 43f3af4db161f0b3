// `cxr experiments heatmap`: how faithful a model's Grad-CAM maps are, per feature-map layer, by
// deletion (Petsiuk et al. 2018, RISE): on the model's validation pneumonia films, replace the
// pixels a map ranks highest by a blurred copy of the film and see how far the ensemble's logit
// falls (or on a folder of pneumonia films, `--images`). A map that marks the evidence the model
// uses makes it fall faster than a random map of the same grid (the baseline: deleting compact
// blobs and deleting scattered pixels are not the same change). Blurring, not blacking out,
// because a dark patch on a film is itself a finding.
// Also reported: the share of each map's heat in the film's outer band (labels, side markers,
// collimation edges), a cue of maps drawn to the frame rather than the lungs.
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { loadRecordedSplit } from '../data/dataset_images';
import { createRng } from '../data/random';
import { gradCam } from '../explain/gradcam';
import { resizeMap } from '../explain/resize';
import {
  type CamMap,
  camParts,
  camPartsAt,
  FEATURE_MAP_LAYER,
  type ModelParts,
  splitModel,
} from '../explain/model_parts';
import { predictAllLogits, predictLogits, toInput } from '../models/infer';
import { loadModel } from '../models/io';
import type { ModelMeta } from '../models/metadata';
import { Predictor } from '../predict/predictor';
import { filmFolderProblem, readSiteFilms, type SiteFilms } from '../adapt/films';

/** Fractions of the film deleted, most highlighted pixels first. */
export const DELETION_FRACTIONS = [0.02, 0.05, 0.1, 0.2, 0.3] as const;
/** Films used by default (evenly spaced over the pneumonia films the model calls positive). */
export const DEFAULT_HEATMAP_FILMS = 100;
/** The outer band is this share of the side on every edge. */
const BAND = 0.1;
/** Side of the box blur that "deletes" a pixel, as a share of the input side (21 px at 160). */
const BLUR_SHARE = 0.13;

export interface HeatmapRow {
  /** A layer name, or `random` (the baseline at `grid`). */
  map: string;
  /** 'the heat map' for the layer the predictor draws, else ''. */
  role: string;
  grid: string;
  /** Mean logit change after deleting each of DELETION_FRACTIONS. */
  deletion: number[];
  /** Mean over the fractions: lower is more faithful. */
  deletionMean: number;
  /** Mean share of the map's heat in the outer band. */
  bandShare: number;
}

export interface HeatmapResult {
  model: string;
  films: number;
  /** Share of the film's area in the outer band. */
  bandArea: number;
  rows: HeatmapRow[];
}

interface View {
  map: string;
  role: string;
  cams: CamMap[];
  grid: [number, number];
}

/** The films: the model's validation split under a data root, or every film in a folder of pneumonia films. */
export type HeatmapFilms = { data: string; cacheDir?: string } | { images: string };

async function pneumoniaFilms(
  modelDir: string,
  meta: ModelMeta,
  films: HeatmapFilms,
  log: (line: string) => void,
): Promise<{ pixels: Uint8Array; indices: number[]; size: number }> {
  if ('images' in films) {
    const predictor = await Predictor.load(modelDir, { warmUp: false });
    try {
      const site = await readSiteFilms(predictor, films.images);
      if (site.files.length === 0) throw new Error(noFilmsMessage(films.images, site));
      return { pixels: site.pixels, indices: site.files.map((_, i) => i), size: site.size };
    } finally {
      predictor.dispose();
    }
  }
  const { val } = await loadRecordedSplit(films.data, meta, { cacheDir: films.cacheDir, warn: log });
  const indices = Array.from(val.labels.keys()).filter((i) => val.labels[i] === 1);
  return { pixels: val.pixels, indices, size: val.size };
}

const IMAGES_EXPECTED = 'a folder of pneumonia films (PNG, JPEG or DICOM files, sub-folders searched too)';

/** Why a folder given as --images yielded no film: it held no files, or none of them could be used. */
function noFilmsMessage(dir: string, site: SiteFilms): string {
  const skipped = [...site.unreadable, ...site.rejected];
  if (skipped.length === 0) return `--images ${dir} holds no files: it expects ${IMAGES_EXPECTED}`;
  const first = skipped[0];
  return (
    `--images ${dir}: none of its ${skipped.length} file(s) is a film the model can use ` +
    `(${site.unreadable.length} not readable as an image, ${site.rejected.length} refused by the image checks; ` +
    `e.g. ${first.file}: ${first.reason}): it expects ${IMAGES_EXPECTED}`
  );
}

/**
 * The layers Grad-CAM can start at, deepest first: 'last_conv', then each layer before it as long as the model
 * from there on is a chain of 4-D maps (explain/model_parts.ts camPartsAt says where it is not).
 */
function camLayers(model: LayersModel, parts: ModelParts): string[] {
  const out = [FEATURE_MAP_LAYER];
  const li = model.layers.findIndex((l) => l.name === FEATURE_MAP_LAYER);
  for (let j = li - 1; j >= 1; j--) {
    try {
      camPartsAt(model, parts, model.layers[j].name);
    } catch {
      break;
    }
    out.push(model.layers[j].name);
  }
  return out;
}

/** Deletion and band share of the maps at the predictor's layer, 'last_conv' and `layers`. */
export async function heatmapTable(
  modelDir: string,
  films: HeatmapFilms,
  opts: { layers?: string[]; limit?: number; log?: (line: string) => void } = {},
): Promise<HeatmapResult> {
  const log = opts.log ?? (() => {});
  if ('images' in films) {
    const problem = filmFolderProblem(films.images);
    if (problem) throw new Error(`--images ${films.images}: ${problem}`);
  }
  const loaded = await loadModel(modelDir);
  const { meta, members } = loaded;
  try {
    // The maps first: a layer that is not there, or where Grad-CAM cannot start, is refused before any film is read.
    const parts = members.map(splitModel);
    const shipped = members.map((m, i) => camParts(m, parts[i]));
    const views: View[] = [];
    const add = (map: string, role: string, cams: CamMap[]) => {
      if (!views.some((v) => v.map === map))
        views.push({ map, role, cams, grid: [cams[0].mapShape[0], cams[0].mapShape[1]] });
    };
    add(shipped[0].layer, 'the heat map', shipped);
    add(FEATURE_MAP_LAYER, '', parts);
    for (const layer of opts.layers ?? []) {
      let cams: CamMap[];
      try {
        cams = members.map((m, i) => camPartsAt(m, parts[i], layer));
      } catch (e) {
        const can = camLayers(members[0], parts[0]);
        // A backbone has a hundred such layers: the deepest, where a map is still coarse enough to read, and the end.
        const shown =
          can.length > 12
            ? `${can.slice(0, 12).join(', ')}, … (${can.length} in all, down to ${can.at(-1)})`
            : can.join(', ');
        throw new Error(`--layers ${layer}: ${(e as Error).message}; Grad-CAM can start at ${shown}`);
      }
      add(layer, '', cams);
    }
    const val = await pneumoniaFilms(modelDir, meta, films, log);
    const S = val.size;
    const per = S * S;
    const grids = [...new Map(views.map((v) => [v.grid.join('x'), v.grid])).values()];

    // Every candidate is scored first, in batches (one forward pass a film, a small share of the
    // deletion curves' cost), and only then are `limit` films taken, evenly spaced, from those the
    // model calls positive: taking `limit` first and dropping the negatives after left fewer films
    // than asked, or none at all.
    const scores = await candidateLogits(members, val);
    const positives = val.indices.filter((_, k) => scores[k] > 0);
    if (positives.length === 0) throw new Error('no pneumonia film has a positive logit: nothing to explain');
    const logitOf = new Map(val.indices.map((i, k) => [i, scores[k]]));
    const limit = Math.min(opts.limit ?? DEFAULT_HEATMAP_FILMS, positives.length);
    const chosen = Array.from({ length: limit }, (_, k) => positives[Math.floor((k * positives.length) / limit)]);
    const F = DELETION_FRACTIONS.length;
    const sums = new Map<string, { deletion: number[]; band: number }>();
    const acc = (key: string) => sums.get(key) ?? sums.set(key, { deletion: new Array(F).fill(0), band: 0 }).get(key)!;
    const band = Math.round(BAND * S);
    const blur = 2 * Math.round((BLUR_SHARE * S) / 2) + 1;
    for (const [k, i] of chosen.entries()) {
      const x = toInput(val.pixels.subarray(i * per, (i + 1) * per), 1, S);
      const base = logitOf.get(i)!;
      const film = x.dataSync() as Float32Array;
      const blurred = tf.tidy(() => tf.avgPool(x, blur, 1, 'same').dataSync() as Float32Array);
      const rand = createRng('heatmap', i);
      const maps: [string, Float32Array][] = [
        ...views.map((v): [string, Float32Array] => [v.map, upsample(gradCam(v.cams, x).map, v.grid, S)]),
        ...grids.map((g): [string, Float32Array] => [
          `random ${g.join('x')}`,
          upsample(Float32Array.from({ length: g[0] * g[1] }, rand), g, S),
        ]),
      ];
      for (const [key, map] of maps) {
        const s = acc(key);
        const change = deletionCurve(members, film, blurred, map, S);
        change.forEach((c, f) => {
          s.deletion[f] += c - base;
        });
        s.band += bandShare(map, S, band);
      }
      x.dispose();
      if ((k + 1) % 20 === 0) log(`heat maps: ${k + 1} of ${limit} films`);
    }
    const row = (map: string, role: string, grid: [number, number], key = map): HeatmapRow => {
      const s = acc(key);
      const deletion = s.deletion.map((v) => v / limit);
      return {
        map,
        role,
        grid: `${grid[0]}×${grid[1]}`,
        deletion,
        deletionMean: deletion.reduce((a, b) => a + b, 0) / F,
        bandShare: s.band / limit,
      };
    };
    const rows = [
      ...views.map((v) => row(v.map, v.role, v.grid)),
      ...grids.map((g) => row('random', '', g, `random ${g.join('x')}`)),
    ];
    return { model: meta.name, films: limit, bandArea: 1 - ((S - 2 * band) / S) ** 2, rows };
  } finally {
    for (const m of members) m.dispose();
  }
}

/** The ensemble's logit of each film in `films.indices`, in that order. */
async function candidateLogits(
  members: LayersModel[],
  films: { pixels: Uint8Array; indices: number[]; size: number },
): Promise<Float32Array> {
  const per = films.size * films.size;
  const n = films.indices.length;
  const gathered = new Uint8Array(n * per);
  films.indices.forEach((i, k) => {
    gathered.set(films.pixels.subarray(i * per, (i + 1) * per), k * per);
  });
  return predictAllLogits(members, gathered, n, films.size);
}

/**
 * The map at the film's S×S, scaled as the overlay draws it (explain/resize.ts, pixel centres aligned): TF.js's
 * default resize sampled from the corners, which moved every map up and left by half a cell (16 px of a 5×5 map
 * at 160 px), so the pixels deleted were not the ones the map marks.
 */
export function upsample(map: Float32Array, [h, w]: [number, number], S: number): Float32Array {
  return resizeMap(map, h, w, S, S);
}

/** The ensemble's logit with the top fraction of pixels (by `map`) replaced by `blurred`, per fraction. */
function deletionCurve(
  members: LayersModel[],
  film: Float32Array,
  blurred: Float32Array,
  map: Float32Array,
  S: number,
): Float32Array {
  const order = Array.from(map.keys()).sort((a, b) => map[b] - map[a]);
  const batch = new Float32Array(DELETION_FRACTIONS.length * S * S);
  DELETION_FRACTIONS.forEach((f, k) => {
    const img = batch.subarray(k * S * S, (k + 1) * S * S);
    img.set(film);
    for (const p of order.slice(0, Math.round(f * S * S))) img[p] = blurred[p];
  });
  const x = tf.tensor4d(batch, [DELETION_FRACTIONS.length, S, S, 1]);
  const logits = predictLogits(members, x);
  x.dispose();
  return logits;
}

function bandShare(map: Float32Array, S: number, band: number): number {
  let total = 0;
  let outer = 0;
  for (let r = 0; r < S; r++) {
    for (let c = 0; c < S; c++) {
      const v = map[r * S + c];
      total += v;
      if (r < band || c < band || r >= S - band || c >= S - band) outer += v;
    }
  }
  return total > 0 ? outer / total : 0;
}

/** The rows as a Markdown table. */
export function heatmapMarkdown(r: HeatmapResult): string {
  const head = DELETION_FRACTIONS.map((f) => `${Math.round(100 * f)}%`).join(' | ');
  return [
    `${r.model}, ${r.films} pneumonia films it calls positive: mean logit change after deleting ` +
      `the top share of the film (lower: the map marks more of the evidence), and the share of heat ` +
      `in the outer band ` +
      `(${(100 * r.bandArea).toFixed(0)}% of the film)`,
    '',
    `| map | grid | ${head} | mean | heat in the outer band |`,
    `| --- | --- | ${DELETION_FRACTIONS.map(() => '---').join(' | ')} | --- | --- |`,
    ...r.rows.map(
      (row) =>
        `| ${row.map}${row.role ? ` (${row.role})` : ''} | ${row.grid} | ` +
        `${row.deletion.map((d) => d.toFixed(2)).join(' | ')} | ${row.deletionMean.toFixed(3)} | ` +
        `${(100 * row.bandShare).toFixed(1)}% |`,
    ),
  ].join('\n');
}
