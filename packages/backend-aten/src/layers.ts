// Opt-in: tfjs-layers' BatchNormalization trained with one native kernel on 'aten', and its
// relu6 activation as one kernel each way.
import { Tensor, engine, getBackend, mul, serialization, sub, tidy } from '@tensorflow/tfjs-core';
import { BACKEND_NAME } from './backend';
import { BATCH_NORM_TRAINING, RELU6 } from './gradients';

/** What the fused path reads of a tfjs-layers 4.x BatchNormalization layer. */
interface BatchNormLayer {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: { read(): Tensor };
  beta: { read(): Tensor };
  movingMean: { read(): Tensor; write(t: Tensor): void };
  movingVariance: { read(): Tensor; write(t: Tensor): void };
}
type Call = (this: BatchNormLayer, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>) => Tensor | Tensor[];

const PATCHED = Symbol.for('@cxr/backend-aten fused batch norm');

function fusedInput(layer: BatchNormLayer, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>): Tensor | null {
  const x = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : null) : inputs;
  const fits =
    x != null &&
    kwargs?.training === true &&
    getBackend() === BACKEND_NAME &&
    // Deeper means a gradient of a gradient, which the fused backward cannot give.
    engine().state.gradientDepth <= 1 &&
    x.dtype === 'float32' &&
    x.rank >= 2 &&
    (layer.axis === -1 || layer.axis === x.rank - 1) &&
    layer.center &&
    layer.scale;
  return fits ? x : null;
}

/**
 * Makes tfjs-layers' BatchNormalization layers (existing and future instances) normalise a
 * training batch with one native kernel on the 'aten' backend, and differentiate it with one more.
 *
 * tfjs-layers computes a training batch's statistics with tf.moments (Mean, Sub, Square, Mean)
 * and normalises with tf.batchNorm, and the backward pass runs through all of those: about
 * eleven passes over the activation in all, where the fused kernels make four. The fused path
 * gives the same results up to float rounding (ATen's statistics kernel) and updates the moving
 * mean and variance exactly as tfjs-layers does. Inference, other backends, a normalisation
 * axis other than the last, layers without center or scale, and higher-order gradients run
 * tfjs-layers' own code.
 *
 * tfjs-layers must have been imported (it registers the layer class). Calling this again does
 * nothing.
 */
export function useFusedBatchNormTraining(): void {
  const entry = serialization.SerializationMap.getMap().classNameMap.BatchNormalization as unknown[] | undefined;
  if (entry === undefined) {
    throw new Error(
      'useFusedBatchNormTraining: import @tensorflow/tfjs-layers first (no BatchNormalization class registered)',
    );
  }
  const proto = (entry[0] as { prototype: Record<string | symbol, unknown> }).prototype;
  if (proto[PATCHED]) return;
  const original = proto.call as Call;
  const call: Call = function (inputs, kwargs) {
    const x = fusedInput(this, inputs, kwargs);
    if (x === null) return original.call(this, inputs, kwargs);
    return tidy(() => {
      const [y, mean, variance] = engine().runKernel(
        BATCH_NORM_TRAINING,
        { x, scale: this.gamma.read(), offset: this.beta.read() },
        { varianceEpsilon: this.epsilon },
      ) as Tensor[];
      for (const [v, value] of [
        [this.movingMean, mean],
        [this.movingVariance, variance],
      ] as const) {
        tidy(() => {
          const old = v.read();
          v.write(sub(old, mul(sub(old, value), 1 - this.momentum)));
        });
      }
      return y;
    });
  };
  proto.call = call;
  proto[PATCHED] = true;
}

const PATCHED_RELU6 = Symbol.for('@cxr/backend-aten native relu6');

/**
 * Makes tfjs-layers' 'relu6' activation (every layer that uses it, existing or future) one
 * native kernel on the 'aten' backend, differentiated by one more.
 *
 * tfjs-layers computes relu6 as minimum(6, relu(x)): Relu and Minimum forward, and Greater, Cast,
 * Multiply and the Relu gradient backward, six passes over the activation where these make two
 * (in MobileNet v1 training they were about a fifth of a step). The outputs are the same, and so
 * are the gradients: dy where 0 < x < 6, else 0, NaN for NaN. Other backends, non-float32 input
 * and higher-order gradients run tfjs-layers' own code. tfjs-layers must have been imported.
 */
export function useNativeRelu6(): void {
  const entry = serialization.SerializationMap.getMap().classNameMap.relu6 as unknown[] | undefined;
  if (entry === undefined) {
    throw new Error('useNativeRelu6: import @tensorflow/tfjs-layers first (no relu6 activation registered)');
  }
  const proto = (entry[0] as { prototype: Record<string | symbol, unknown> }).prototype;
  if (proto[PATCHED_RELU6]) return;
  const original = proto.apply as (this: unknown, x: Tensor) => Tensor;
  proto.apply = function (this: unknown, x: Tensor): Tensor {
    const fits = getBackend() === BACKEND_NAME && x.dtype === 'float32' && engine().state.gradientDepth <= 1;
    return fits ? (engine().runKernel(RELU6, { x }) as Tensor) : original.call(this, x);
  };
  proto[PATCHED_RELU6] = true;
}
