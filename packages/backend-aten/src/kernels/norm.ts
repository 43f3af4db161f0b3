// FusedBatchNorm and its fused gradient (AtenFusedBatchNormGrad, run by the override in
// ../gradients.ts). Parameters shorter than x are broadcast over its trailing elements.
// AtenBatchNormTraining is batch normalisation with the batch's own moments in one kernel
// (see ../layers.ts), and AtenBatchNormTrainingGrad its whole backward.
import { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import {
  BATCH_NORM_GRAD,
  BATCH_NORM_TRAINING,
  BATCH_NORM_TRAINING_GRAD,
  batchNormChannels,
  ensureGradientOverrides,
} from '../gradients';
import { native } from '../native';
import { nativeKernel } from './kernel';

type Inputs = Record<string, TensorInfo | undefined>;

const epsilon = (attrs?: Record<string, unknown>) => (attrs?.varianceEpsilon as number | undefined) ?? 0.001;

export const kernels: KernelConfig[] = [
  nativeKernel('FusedBatchNorm', (b, { inputs, attrs }) => {
    // The gradient must be ours by the time the engine records this kernel.
    ensureGradientOverrides();
    const { x, mean, variance, offset, scale } = inputs as Inputs;
    if (batchNormChannels(x!, [mean, variance, offset, scale]) == null) return null;
    const opt = (t?: TensorInfo) => (t != null ? b.handle(t) : null);
    const h = native.batchNorm(
      b.handle(x!),
      b.handle(mean!),
      b.handle(variance!),
      opt(offset),
      opt(scale),
      epsilon(attrs),
    );
    return b.output(h, 'float32', x!.shape);
  }),

  // inputs dy, x, mean, variance, scale?, offset? -> [dx, dmean, dvariance, dscale, doffset]
  nativeKernel(BATCH_NORM_GRAD, (b, { inputs, attrs }) => {
    const { dy, x, mean, variance, scale, offset } = inputs as Inputs;
    const opt = (t?: TensorInfo) => (t != null ? b.handle(t) : null);
    const hs = native.batchNormGrad(
      b.handle(dy!),
      b.handle(x!),
      b.handle(mean!),
      b.handle(variance!),
      opt(scale),
      opt(offset),
      epsilon(attrs),
    );
    return hs.map((h) => b.output(h, 'float32'));
  }),

  // inputs x (float32, channels last), scale, offset ([C]) -> [y, mean, variance], the moments
  // over every axis but the last, the variance biased (as tf.moments computes it).
  nativeKernel(BATCH_NORM_TRAINING, (b, { inputs, attrs }) => {
    const { x, scale, offset } = inputs as Record<string, TensorInfo>;
    const c = x.shape[x.shape.length - 1];
    if (
      ![x, scale, offset].every((t) => t != null && t.dtype === 'float32') ||
      ![scale, offset].every((p) => p.shape.length === 1 && p.shape[0] === c)
    ) {
      throw new Error(`${BATCH_NORM_TRAINING}: expected float32 x and scale and offset of shape [${c}]`);
    }
    const [y, mean, variance] = native.batchNormTraining(
      b.handle(x),
      b.handle(scale),
      b.handle(offset),
      epsilon(attrs),
    );
    return [b.output(y, 'float32', x.shape), b.output(mean, 'float32', [c]), b.output(variance, 'float32', [c])];
  }),

  // inputs dy, x, mean, variance, scale, dmean?, dvariance? -> [dx, dscale, doffset]; dmean and
  // dvariance are the gradients of the mean and variance outputs, when they have any.
  nativeKernel(BATCH_NORM_TRAINING_GRAD, (b, { inputs, attrs }) => {
    const { dy, x, mean, variance, scale, dmean, dvariance } = inputs as Inputs;
    const opt = (t?: TensorInfo) => (t != null ? b.handle(t) : null);
    const hs = native.batchNormTrainingGrad(
      b.handle(dy!),
      b.handle(x!),
      b.handle(mean!),
      b.handle(variance!),
      opt(scale),
      epsilon(attrs),
      opt(dmean),
      opt(dvariance),
    );
    return hs.map((h) => b.output(h, 'float32'));
  }),
];
