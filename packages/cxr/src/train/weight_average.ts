// Weight averaging (recipe field `weightAverage`): an exponential moving average (EMA) of every
// weight of the model, updated after each training step. A single run's last weights depend on
// the last few hundred batches it happened to see; the average over the end of training is a
// flatter, less seed-dependent point (the seed spread of docs/generalisation.md is what this is
// for). The loop validates, selects and saves the averaged weights; training continues on the raw
// ones, so the checkpoint carries both and a resumed run continues the same average.
//
// Batch normalisation: `model.weights` holds the moving mean and variance too (non-trainable), so
// they are averaged with the same decay as the weights they normalise. Averaged statistics of
// nearly identical late-training weights are a close match for the averaged network, with no
// extra pass over the training set (recomputing them would be the alternative).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { readCheckedJson } from '../models/io';
import { decodeWeightBin } from '../models/weight_slots';
import { WeightSpec } from '../models/weights_manifest';
import { startAgain } from './checkpoint';

export const weightAverageSchema = z.object({
  method: z.literal('ema'),
  /** Per-step decay; the average's horizon is about 1 / (1 - decay) steps. */
  decay: z.number().gt(0).lt(1),
});
export type WeightAverageConfig = z.infer<typeof weightAverageSchema>;

/**
 * The decay of the n-th update (1-based). Early on it is capped at (1 + n) / (10 + n), as
 * TensorFlow's ExponentialMovingAverage does with num_updates: with a fixed 0.999 the randomly
 * initialised weights would still weigh e^-1 after 1000 steps, most of a 10-epoch run here.
 */
export function emaDecay(decay: number, n: number): number {
  return Math.min(decay, (1 + n) / (10 + n));
}

const FILE_BIN = 'average.bin';
const FILE_JSON = 'average.json';

/** average.json: the updates so far and the specs of average.bin's weights (w0, w1, ... in model.weights order). */
const SavedAverage = z.object({ steps: z.number().int().min(0), specs: z.array(WeightSpec) });

export class WeightAverage {
  private avg: tf.Variable[];
  /** Updates so far (restored from a checkpoint on resume). */
  steps = 0;

  constructor(
    readonly config: WeightAverageConfig,
    private readonly model: tfl.LayersModel,
  ) {
    // Starts at the model's current weights; the first update's decay is small, so they fade fast.
    this.avg = model.weights.map((w) => tf.variable(w.read(), false));
  }

  /** After each optimiser step: avg = d * avg + (1 - d) * weights. */
  update(): void {
    this.steps++;
    const d = emaDecay(this.config.decay, this.steps);
    const weights = this.model.weights;
    tf.tidy(() => {
      weights.forEach((w, i) => {
        this.avg[i].assign(tf.add(tf.mul(this.avg[i], d), tf.mul(w.read(), 1 - d)));
      });
    });
  }

  /** Copies of the averaged weights, in `model.weights` order (the caller disposes them). */
  averaged(): tf.Tensor[] {
    return this.avg.map((v) => tf.clone(v));
  }

  /** Puts the averaged weights into the model; the returned function puts the raw ones back. */
  swapIn(): () => void {
    const weights = this.model.weights;
    const raw = weights.map((w) => tf.clone(w.read()));
    weights.forEach((w, i) => w.write(this.avg[i]));
    return () => {
      weights.forEach((w, i) => w.write(raw[i]));
      tf.dispose(raw);
    };
  }

  /** Writes the average into a checkpoint folder (beside the raw weights and optimiser slots). */
  async save(dir: string): Promise<void> {
    const named: tf.NamedTensorMap = {};
    this.avg.forEach((v, i) => {
      named[`w${i}`] = v;
    });
    const { data, specs } = await tf.io.encodeWeights(named);
    fs.writeFileSync(path.join(dir, FILE_BIN), Buffer.from(data as ArrayBuffer));
    fs.writeFileSync(path.join(dir, FILE_JSON), JSON.stringify({ steps: this.steps, config: this.config, specs }));
  }

  /** Restores the average of a checkpoint written by save(); it must match the model's weights. */
  restore(dir: string): void {
    const jsonPath = path.join(dir, FILE_JSON);
    const what = 'the weight average of a run checkpoint';
    const saved = readCheckedJson(jsonPath, SavedAverage, what, startAgain(dir));
    if (!saved) throw new Error(`${dir}: the checkpoint has no weight average to resume`);
    const named = decodeWeightBin(path.join(dir, FILE_BIN), saved.specs, jsonPath, what, startAgain(dir));
    try {
      this.avg.forEach((v, i) => {
        const t = named[`w${i}`];
        if (!t || !tf.util.arraysEqual(t.shape, v.shape))
          throw new Error(`${dir}: the saved weight average does not match the model (weight ${i})`);
        v.assign(t);
      });
    } finally {
      tf.dispose(Object.values(named));
    }
    this.steps = saved.steps;
  }

  dispose(): void {
    tf.dispose(this.avg);
  }
}
