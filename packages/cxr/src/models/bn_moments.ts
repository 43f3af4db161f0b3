// Batch-norm layers of a model and the pooled statistics of their inputs: the layers in forward
// order and in waves (a wave is every layer whose upstream batch-norm layers are in earlier
// waves), and per-channel mean and variance over many images combined in float64 (Chan et al.'s
// pairwise update), so no E[x²] − E[x]² cancellation. Used by site adaptation (adapt/bn_stats.ts)
// and by the reference statistics a model carries for it (models/bn_reference.ts), both through
// models/layer_inputs.ts, which computes the layers' inputs.
import * as tfl from '@tensorflow/tfjs-layers';

type Layer = tfl.layers.Layer;

interface BnConfig {
  axis?: number | number[];
}

/** The batch-norm layers of a model in forward (topological) order; nested models are refused. */
export function bnLayers(model: tfl.LayersModel): Layer[] {
  for (const l of model.layers) {
    if (l instanceof tfl.LayersModel && l.layers.some((x) => x.getClassName() === 'BatchNormalization')) {
      throw new Error(`model '${model.name}': batch norm inside the nested model '${l.name}' is not supported`);
    }
  }
  return model.layers.filter((l) => l.getClassName() === 'BatchNormalization');
}

/** Batch-norm layers upstream of `layer` (through any path), by name. */
function upstreamBn(layer: Layer, memo: Map<string, Set<string>>): Set<string> {
  const known = memo.get(layer.name);
  if (known) return known;
  const out = new Set<string>();
  memo.set(layer.name, out);
  for (const node of layer.inboundNodes.slice(0, 1)) {
    for (const src of node.inboundLayers) {
      if (src.getClassName() === 'BatchNormalization') out.add(src.name);
      for (const n of upstreamBn(src, memo)) out.add(n);
    }
  }
  return out;
}

/** Layers grouped so that every layer's upstream batch-norm layers are in earlier groups. */
export function bnWaves(layers: Layer[]): Layer[][] {
  const memo = new Map<string, Set<string>>();
  const done = new Set<string>();
  const waves: Layer[][] = [];
  let left = layers;
  while (left.length) {
    const wave = left.filter((l) => [...upstreamBn(l, memo)].every((n) => done.has(n)));
    if (wave.length === 0) throw new Error('batch-norm layers form a cycle (not a feed-forward model)');
    waves.push(wave);
    for (const l of wave) done.add(l.name);
    left = left.filter((l) => !done.has(l.name));
  }
  return waves;
}

/** Running per-channel statistics: count, mean and sum of squared deviations (M2). */
export class PooledMoments {
  n = 0;
  readonly mean: Float64Array;
  readonly m2: Float64Array;

  constructor(channels: number) {
    this.mean = new Float64Array(channels);
    this.m2 = new Float64Array(channels);
  }

  /** Adds a group of nb values per channel with the given means and (population) variances. */
  add(nb: number, mean: ArrayLike<number>, variance: ArrayLike<number>): void {
    if (nb <= 0) return;
    const n = this.n + nb;
    for (let c = 0; c < this.mean.length; c++) {
      const delta = mean[c] - this.mean[c];
      this.mean[c] += (delta * nb) / n;
      this.m2[c] += variance[c] * nb + (delta * delta * this.n * nb) / n;
    }
    this.n = n;
  }

  /** Population variance (divided by n): the variance of all values pooled. */
  variance(): Float64Array {
    return this.m2.map((v) => (this.n > 0 ? v / this.n : 0));
  }
}

export function channelAxis(layer: Layer, rank: number): number {
  const cfg = layer.getConfig() as BnConfig;
  const axis = Array.isArray(cfg.axis) ? cfg.axis : [cfg.axis ?? -1];
  if (axis.length !== 1) throw new Error(`batch norm '${layer.name}' normalises over several axes: not supported`);
  return axis[0] < 0 ? rank + axis[0] : axis[0];
}
