// FusedBatchNorm and its fused gradient (AtenFusedBatchNormGrad, run by the override in
// ../gradients.ts). Parameters shorter than x are broadcast over its trailing elements.
import { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { BATCH_NORM_GRAD, batchNormChannels, ensureGradientOverrides } from '../gradients';
import { Handle, native } from '../native';
import { nativeKernel } from './kernel';

type Inputs = Record<string, TensorInfo | undefined>;

export const kernels: KernelConfig[] = [
  nativeKernel('FusedBatchNorm', (b, { inputs, attrs }) => {
    // The gradient must be ours by the time the engine records this kernel.
    ensureGradientOverrides();
    const { x, mean, variance, offset, scale } = inputs as Inputs;
    if (batchNormChannels(x!, [mean, variance, offset, scale]) == null) return null;
    const opt = (t?: TensorInfo) => (t != null ? b.handle(t) : null);
    const h = native.batchNorm(b.handle(x!), b.handle(mean!), b.handle(variance!), opt(offset), opt(scale),
      (attrs?.varianceEpsilon as number | undefined) ?? 0.001);
    return b.output(h, 'float32', x!.shape);
  }),

  // inputs dy, x, mean, variance, scale?, offset? -> [dx, dmean, dvariance, dscale, doffset]
  nativeKernel(BATCH_NORM_GRAD, (b, { inputs, attrs }) => {
    const { dy, x, mean, variance, scale, offset } = inputs as Inputs;
    const opt = (t?: TensorInfo) => (t != null ? b.handle(t) : null);
    const hs = native.batchNormGrad(b.handle(dy!), b.handle(x!), b.handle(mean!), b.handle(variance!), opt(scale),
      opt(offset), (attrs?.varianceEpsilon as number | undefined) ?? 0.001) as Handle[];
    return hs.map((h) => b.output(h, 'float32'));
  }),
];
