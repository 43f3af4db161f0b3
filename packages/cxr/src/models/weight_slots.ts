// Tensors a checkpoint keeps beside its model folder, outside a model.json: an optimiser's slots (a run's
// optimizer.json/.bin, a GAN's optimizer-g and optimizer-d) and a run's weight average (average.json/.bin).
// Each is a list of TF.js weight specs (models/weights_manifest.ts's WeightSpec) in a JSON file and their
// bytes, in spec order, in a .bin. One reader for all of them (here, below train/ and gan/, which both
// restore such files), so that a missing, cut-short or edited file is refused naming it and what to do,
// not met as TF.js's own error from deep inside a restore.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { readCheckedJson } from './io';
import { specsBytes, WeightSpec } from './weights_manifest';

/**
 * The tensors of the file `bin`, which `specs` (read from the file `described`) describe, by name; an error
 * naming the file, `what` it is and `remedy`, what to do, when it cannot be read or holds other bytes than
 * the specs describe.
 */
export function decodeWeightBin(
  bin: string,
  specs: readonly WeightSpec[],
  described: string,
  what: string,
  remedy: string,
): tf.NamedTensorMap {
  let buf: Buffer<ArrayBuffer>;
  try {
    buf = fs.readFileSync(bin);
  } catch (e) {
    throw new Error(`cannot read ${bin} (${what}): ${(e as Error).message}; ${remedy}`);
  }
  const expected = specsBytes(specs);
  if (buf.byteLength !== expected) {
    throw new Error(
      `${bin} holds ${buf.byteLength} bytes where ${path.basename(described)} describes ${expected} ` +
        `(cut short, or from another checkpoint): ${remedy}`,
    );
  }
  return tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), [...specs]);
}

/**
 * The tensors `NAME.json` (a list of weight specs) and `NAME.bin` in `dir` hold, by name, as
 * tf.io.encodeWeights wrote them; an error naming the file, `what` it is and `remedy` when either is
 * missing, cut short or edited.
 */
export function readWeightSlots(dir: string, name: string, what: string, remedy: string): tf.NamedTensorMap {
  const json = path.join(dir, `${name}.json`);
  const specs = readCheckedJson(json, z.array(WeightSpec), what, remedy);
  if (!specs) throw new Error(`${dir} has no ${name}.json (${what}): ${remedy}`);
  return decodeWeightBin(path.join(dir, `${name}.bin`), specs, json, what, remedy);
}
