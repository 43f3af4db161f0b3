// A frozen network compiled for inference: every convolution followed by batch norm (and a
// ReLU/ReLU6) becomes one fused convolution with the batch norm folded into its kernel and bias:
//   s = gamma / sqrt(var + eps),  kernel' = kernel * s,  bias' = (bias - mean) * s + beta.
// On a CPU that removes two or three full passes over every feature map (batch norm, relu,
// the clip at 6) per convolution, which is most of a MobileNet's non-convolution time. Used only
// to compute features of a frozen backbone; the layers themselves are trained and saved as usual.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { variableShortName } from './weights';

type Activation = 'linear' | 'relu' | 'relu6';
type Step = { name: string; inputs: string[]; run: (xs: tf.Tensor[]) => tf.Tensor };

export interface CompiledNetwork {
  /** Output of the compiled layer for a batch (inference mode); the caller disposes it. */
  predict(x: tf.Tensor): tf.Tensor;
  /** Frees the folded kernels (the model's own weights are untouched). */
  dispose(): void;
  /** Convolutions that absorbed a batch norm. */
  folded: number;
}

function inbound(layer: tfl.layers.Layer): tfl.layers.Layer[] {
  return layer.inboundNodes[0]?.inboundLayers ?? [];
}

/** The activation a layer applies if it is only an activation we can fuse, else null. */
function fusableActivation(layer: tfl.layers.Layer): Activation | null {
  const cls = layer.getClassName();
  const cfg = layer.getConfig() as { activation?: string; maxValue?: number | null };
  if (cls === 'Activation' && (cfg.activation === 'relu' || cfg.activation === 'relu6' || cfg.activation === 'linear'))
    return cfg.activation;
  if (cls === 'ReLU') return cfg.maxValue === 6 ? 'relu6' : cfg.maxValue == null ? 'relu' : null;
  return null;
}

function named(layer: tfl.layers.Layer): Map<string, tf.Tensor> {
  return new Map(layer.weights.map((v) => [variableShortName(v), v.read()]));
}

/**
 * Compiles `model` from its input to layer `output`. Layers other than the fused convolutions
 * run as themselves (eagerly, training off). Returns null for a model with several inputs or a
 * layer used more than once.
 */
export function compileFrozen(model: tfl.LayersModel, output: string): CompiledNetwork | null {
  if (model.inputs.length !== 1 || model.layers.some((l) => l.inboundNodes.length > 1)) return null;
  const consumers = new Map<string, tfl.layers.Layer[]>();
  for (const l of model.layers)
    for (const i of inbound(l)) consumers.set(i.name, [...(consumers.get(i.name) ?? []), l]);
  const only = (l: tfl.layers.Layer) => {
    const c = consumers.get(l.name) ?? [];
    return c.length === 1 ? c[0] : null;
  };
  const owned: tf.Tensor[] = [];
  const steps: Step[] = [];
  const alias = new Map<string, string>();
  const skip = new Set<string>();
  let folded = 0;
  for (const layer of model.layers) {
    if (skip.has(layer.name)) continue;
    const cls = layer.getClassName();
    const inputs = inbound(layer).map((l) => alias.get(l.name) ?? l.name);
    if (cls === 'InputLayer') continue;
    if (cls !== 'Conv2D' && cls !== 'DepthwiseConv2D') {
      steps.push({
        name: layer.name,
        inputs,
        run: (xs) => layer.apply(xs.length === 1 ? xs[0] : xs, { training: false }) as tf.Tensor,
      });
      continue;
    }
    const cfg = layer.getConfig() as {
      strides: number[];
      padding: 'same' | 'valid';
      dilationRate: number[];
      activation: string;
      useBias: boolean;
    };
    const w = named(layer);
    let kernel = w.get(cls === 'Conv2D' ? 'kernel' : 'depthwise_kernel')!;
    let bias: tf.Tensor | undefined = cfg.useBias ? w.get('bias') : undefined;
    let activation = cfg.activation as Activation;
    let last = layer;
    const bn = only(layer);
    if (bn && bn.getClassName() === 'BatchNormalization' && activation === 'linear') {
      const b = named(bn);
      const eps = (bn.getConfig() as { epsilon: number }).epsilon;
      const [k, bb] = tf.tidy(() => {
        const gamma = b.get('gamma') ?? tf.onesLike(b.get('moving_mean')!);
        const s = tf.div(gamma, tf.sqrt(tf.add(b.get('moving_variance')!, eps)));
        const shift = tf.sub(bias ?? tf.zerosLike(s), b.get('moving_mean')!);
        const nb = tf.add(tf.mul(shift, s), b.get('beta') ?? tf.zerosLike(s));
        const ks = cls === 'Conv2D' ? s : tf.reshape(s, kernel.shape.slice(2));
        return [tf.mul(kernel, ks), nb];
      });
      owned.push(k, bb);
      kernel = k;
      bias = bb;
      skip.add(bn.name);
      last = bn;
      folded++;
    }
    const act = only(last);
    const fusable = act ? fusableActivation(act) : null;
    if (act && fusable && activation === 'linear') {
      activation = fusable;
      skip.add(act.name);
      last = act;
    }
    if (activation !== 'linear' && activation !== 'relu' && activation !== 'relu6') return null;
    const args = {
      filter: kernel,
      strides: cfg.strides as [number, number],
      pad: cfg.padding,
      dilations: cfg.dilationRate as [number, number],
      bias,
      activation,
    };
    steps.push({
      name: last.name,
      inputs,
      run: ([x]) =>
        cls === 'Conv2D'
          ? tf.fused.conv2d({ x: x as tf.Tensor4D, ...args, filter: kernel as tf.Tensor4D })
          : tf.fused.depthwiseConv2d({ x: x as tf.Tensor4D, ...args, filter: kernel as tf.Tensor4D }),
    });
    for (const n of [layer.name, bn?.name, act?.name]) if (n && skip.has(n)) alias.set(n, last.name);
    alias.set(layer.name, last.name);
    if (last.name === output) break;
  }
  const end = steps.findIndex((s) => s.name === output);
  if (end < 0) {
    tf.dispose(owned);
    return null;
  }
  const plan = steps.slice(0, end + 1);
  const inputName = model.inputLayers[0].name;
  return {
    folded,
    predict: (x) =>
      tf.tidy(() => {
        const values = new Map<string, tf.Tensor>([[inputName, x]]);
        for (const s of plan) values.set(s.name, s.run(s.inputs.map((n) => values.get(n)!)));
        return values.get(output)!;
      }),
    dispose: () => tf.dispose(owned),
  };
}
