// The inputs of chosen layers of a model over many images, computed batch by batch from what an
// earlier call left behind. Site adaptation (adapt/bn_stats.ts) re-estimates batch-norm layers
// wave by wave, and each wave's inputs depend on the waves before it; computing every wave from
// the pixels costs a forward pass up to that wave, so the whole adaptation grows with the square
// of the network's depth (a MobileNet has 27 waves). Here each batch keeps the tensors the
// layers not yet run still need (for a chain, the input of the last wave), so the next wave
// starts there and the adaptation costs about one forward pass. What is kept is bounded by a
// byte budget; batches beyond it keep nothing and start from their pixels each time (the cost
// of before, never wrong).
//
// Kept tensors stay valid only while the layers that made them keep their weights: callers
// change only layers whose inputs they asked for last (a wave's batch-norm layers), which no
// kept tensor comes from, since a wave's inputs do not depend on its own layers.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { channelAxis, PooledMoments } from './bn_moments';
import { toInput } from './infer';

type Layer = tfl.layers.Layer;

/** Bytes of tensors a LayerInputs keeps between calls by default. */
export const DEFAULT_KEEP_BYTES = 1024 ** 3;

/** One batch's computed tensors (by symbolic tensor id) and which symbolic tensors it has computed. */
interface BatchState {
  values: Map<number, tf.Tensor>;
  done: Set<number>;
}

function stateBytes(state: BatchState): number {
  return [...state.values.values()].reduce((s, t) => s + t.size * 4, 0);
}

export interface LayerInputsOptions {
  batchSize?: number;
  /** Most bytes of tensors kept between calls (0: keep nothing, every call starts from the pixels). */
  keepBytes?: number;
}

export class LayerInputs {
  private readonly input: tfl.SymbolicTensor;
  /** For each symbolic tensor id, the ids of the symbolic tensors computed from it. */
  private readonly consumers = new Map<number, number[]>();
  private readonly states: (BatchState | null)[];
  private readonly batchSize: number;
  private readonly keepBytes: number;

  constructor(
    model: tfl.LayersModel,
    private readonly pixels: Uint8Array,
    private readonly n: number,
    private readonly size: number,
    opts: LayerInputsOptions = {},
  ) {
    if (model.inputs.length !== 1) throw new Error(`model '${model.name}' has ${model.inputs.length} inputs, not 1`);
    this.input = model.inputs[0];
    this.batchSize = opts.batchSize ?? 32;
    this.keepBytes = opts.keepBytes ?? DEFAULT_KEEP_BYTES;
    this.states = Array.from({ length: Math.ceil(n / this.batchSize) }, () => null);
    const seen = new Set<number>();
    const visit = (t: tfl.SymbolicTensor) => {
      if (seen.has(t.id)) return;
      seen.add(t.id);
      for (const src of t.inputs) {
        const list = this.consumers.get(src.id) ?? [];
        list.push(t.id);
        this.consumers.set(src.id, list);
        visit(src);
      }
    };
    for (const out of model.outputs) visit(out);
  }

  /**
   * Pooled per-channel moments of the inputs of `layers` over all images, in inference mode,
   * with the model's weights as they are now.
   */
  async moments(layers: Layer[]): Promise<PooledMoments[]> {
    const targets = layers.map((l) => l.getInputAt(0) as tfl.SymbolicTensor);
    const axes = targets.map((t, i) => channelAxis(layers[i], t.shape.length));
    const acc = targets.map((t, i) => new PooledMoments(t.shape[axes[i]] ?? 0));
    const keep = new Set(targets.map((t) => t.id));
    let kept = 0;
    for (let b = 0; b < this.states.length; b++) {
      const state = this.states[b] ?? this.start(b);
      const stats = tf.tidy(() =>
        targets.map((target, k) => {
          const t = this.value(target, state, keep);
          const reduce = Array.from({ length: t.rank }, (_, a) => a).filter((a) => a !== axes[k]);
          const { mean, variance } = tf.moments(t, reduce);
          return { mean, variance, count: reduce.reduce((p, a) => p * t.shape[a], 1) };
        }),
      );
      stats.forEach((s, k) => {
        acc[k].add(s.count, s.mean.dataSync(), s.variance.dataSync());
        tf.dispose([s.mean, s.variance]);
      });
      const bytes = stateBytes(state);
      if (kept + bytes <= this.keepBytes) {
        kept += bytes;
        this.states[b] = state;
      } else {
        this.drop(state);
        this.states[b] = null;
      }
      await new Promise((r) => setImmediate(r));
    }
    return acc;
  }

  /** Bytes of tensors kept now for the next call. */
  keptBytes(): number {
    return this.states.reduce((sum, s) => sum + (s ? stateBytes(s) : 0), 0);
  }

  /** Releases every kept tensor. */
  dispose(): void {
    for (const s of this.states) if (s) this.drop(s);
    this.states.fill(null);
  }

  private start(b: number): BatchState {
    const per = this.size * this.size;
    const i = b * this.batchSize;
    const m = Math.min(this.batchSize, this.n - i);
    const x = toInput(this.pixels.subarray(i * per, (i + m) * per), m, this.size);
    return { values: new Map([[this.input.id, x]]), done: new Set([this.input.id]) };
  }

  private drop(state: BatchState): void {
    tf.dispose([...state.values.values()]);
    state.values.clear();
  }

  /**
   * The value of `t` for this batch, computing what is missing (inside the caller's tidy; what is
   * stored is kept). A value is released once everything computed from it is done, unless it is a
   * target of this call.
   */
  private value(t: tfl.SymbolicTensor, state: BatchState, targets: Set<number>): tf.Tensor {
    const have = state.values.get(t.id);
    if (have) return have;
    if (state.done.has(t.id)) throw new Error(`'${t.name}' was released before everything needing it was computed`);
    const ins = t.inputs.map((src) => this.value(src, state, targets));
    const outs = this.nodeOutputs(t);
    const out = t.sourceLayer.apply(ins) as tf.Tensor | tf.Tensor[];
    const results = Array.isArray(out) ? out : [out];
    if (results.length !== outs.length) throw new Error(`layer '${t.sourceLayer.name}' gave ${results.length} outputs`);
    outs.forEach((o, k) => {
      state.values.set(o.id, tf.keep(results[k]));
      state.done.add(o.id);
    });
    for (const src of t.inputs) {
      const needed = (this.consumers.get(src.id) ?? []).some((c) => !state.done.has(c));
      const value = state.values.get(src.id);
      if (!needed && !targets.has(src.id) && value) {
        value.dispose();
        state.values.delete(src.id);
      }
    }
    return state.values.get(t.id) as tf.Tensor;
  }

  /** Every output of the layer call that produced `t` (a layer may have several outputs and several calls). */
  private nodeOutputs(t: tfl.SymbolicTensor): tfl.SymbolicTensor[] {
    const node = t.sourceLayer.inboundNodes.find((nd) => nd.outputTensors.some((o) => o.id === t.id));
    if (!node) throw new Error(`no call of layer '${t.sourceLayer.name}' produced '${t.name}'`);
    return node.outputTensors;
  }
}

/**
 * Pooled per-channel moments of the inputs of `layers` over the n images in `pixels`, in
 * inference mode, in one pass from the pixels (nothing kept).
 */
export async function layerInputMoments(
  model: tfl.LayersModel,
  layers: Layer[],
  pixels: Uint8Array,
  n: number,
  size: number,
  batchSize = 32,
): Promise<PooledMoments[]> {
  const inputs = new LayerInputs(model, pixels, n, size, { batchSize, keepBytes: 0 });
  try {
    return await inputs.moments(layers);
  } finally {
    inputs.dispose();
  }
}
