// Pretrained weights, whatever file they come in, as layer name -> weight name -> array, and
// their placement into a model built in TypeScript, by name. Placing by name (not by order) is
// what makes a mismatch between a definition and a file an error instead of silent garbage.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { readKerasH5 } from './keras_h5';
import { readModelFile, readWeightsManifest } from '../io';
import { specsBytes } from '../weights_manifest';

import type { WeightMap } from './weight_map';

export type { WeightArray, WeightMap } from './weight_map';

/**
 * Reads a TF.js Layers model folder's weights (model.json's manifest + its shard files). A manifest that is
 * not TF.js's, or shards that hold other bytes than it describes, are refused naming the folder and `remedy`,
 * what to do, rather than met as a TypeError or a RangeError inside TF.js's decoder.
 */
export function readTfjsLayersWeights(
  dir: string,
  remedy = "use another copy of these weights, or fetch the backbone's again: cxr backbone fetch <name> --force",
): WeightMap {
  const out: WeightMap = new Map();
  for (const group of readWeightsManifest(dir, remedy)) {
    const buf = Buffer.concat(group.paths.map((p) => readModelFile(dir, p)));
    const expected = specsBytes(group.weights);
    if (buf.byteLength !== expected) {
      throw new Error(
        `${dir}: ${group.paths.join(', ')} hold ${buf.byteLength} bytes where model.json describes ${expected} ` +
          `(truncated, or from other weights): ${remedy}`,
      );
    }
    const named = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), group.weights);
    for (const [name, t] of Object.entries(named)) {
      const parts = name.split('/');
      const short = parts.pop()!;
      const layer = parts.pop() ?? short;
      if (!out.has(layer)) out.set(layer, new Map());
      out.get(layer)!.set(short, { shape: t.shape, data: Float32Array.from(t.dataSync() as ArrayLike<number>) });
      t.dispose();
    }
  }
  return out;
}

export async function readWeightFile(file: string): Promise<WeightMap> {
  if (fs.statSync(file).isDirectory()) return readTfjsLayersWeights(file);
  if (path.basename(file) === 'model.json') return readTfjsLayersWeights(path.dirname(file));
  return readKerasH5(file);
}

/** The short name of a model variable: 'conv2d_1/kernel' -> 'kernel'. */
export function variableShortName(v: tfl.LayerVariable): string {
  return v.originalName.split('/').pop()!;
}

export interface Placement {
  /** Variables given values. */
  placed: number;
  /** Layers of the file that the model does not have (e.g. an ImageNet classifier). */
  unused: string[];
}

/**
 * Sets every weight of `layers` from `weights`, matched by layer name and weight name, with
 * shapes checked. A layer of the model missing from the file, or a weight missing from its
 * layer, is an error: a backbone half-loaded from ImageNet must not train quietly.
 */
export function placeWeights(layers: readonly tfl.layers.Layer[], weights: WeightMap, source: string): Placement {
  let placed = 0;
  const seen = new Set<string>();
  for (const layer of layers) {
    if (layer.weights.length === 0) continue;
    const entry = weights.get(layer.name);
    if (!entry) throw new Error(`${source}: no weights for layer '${layer.name}'`);
    seen.add(layer.name);
    const values = layer.weights.map((v) => {
      const short = variableShortName(v);
      const w = entry.get(short);
      if (!w)
        throw new Error(
          `${source}: layer '${layer.name}' has no weight '${short}' (has: ${[...entry.keys()].join(', ')})`,
        );
      if (w.shape.length !== v.shape.length || w.shape.some((d, i) => d !== v.shape[i])) {
        throw new Error(
          `${source}: '${layer.name}/${short}' is [${w.shape}] in the file but [${v.shape}] in the model`,
        );
      }
      return tf.tensor(w.data, w.shape);
    });
    layer.setWeights(values);
    tf.dispose(values);
    placed += values.length;
  }
  return { placed, unused: [...weights.keys()].filter((k) => !seen.has(k)) };
}
