// DCGAN-style class-conditional networks.
//
// Generator: [noise, one-hot label] -> dense 4x4 -> stride-2 transposed convolutions, each
// doubling the side and halving the channels (BN + ReLU), -> tanh image in [-1, 1].
// Discriminator: stride-2 convolutions (LeakyReLU 0.2, BN after the first) down to 4x4, then a
// linear score plus a projection term <embed(label), features> (Miyato & Koyama's projection
// discriminator), which conditions more reliably than concatenating the label to the image.
// Weights start from N(0, 0.02) as in DCGAN, with seeded initialisers so a run is reproducible.
import * as tfl from '@tensorflow/tfjs-layers';
import type { GanConfig } from './config';

type T = tfl.SymbolicTensor;

function levels(size: number): number {
  const n = Math.log2(size / 4);
  if (!Number.isInteger(n) || n < 2) throw new Error(`GAN size must be 4·2^k with k >= 2, got ${size}`);
  return n;
}

function seeded(seed: number) {
  let k = 0;
  return () => tfl.initializers.randomNormal({ mean: 0, stddev: 0.02, seed: seed * 1000 + k++ });
}

export function buildGenerator(c: Pick<GanConfig, 'size' | 'zDim' | 'gWidth' | 'seed'>): tfl.LayersModel {
  const n = levels(c.size);
  const init = seeded(c.seed);
  const noise = tfl.input({ shape: [c.zDim], name: 'noise' });
  const label = tfl.input({ shape: [2], name: 'label' });
  const top = c.gWidth * 2 ** (n - 1);
  let h = tfl.layers.concatenate({ name: 'g_in' }).apply([noise, label]) as T;
  h = tfl.layers.dense({ units: 16 * top, useBias: false, kernelInitializer: init(), name: 'g_dense' }).apply(h) as T;
  h = tfl.layers.reshape({ targetShape: [4, 4, top], name: 'g_reshape' }).apply(h) as T;
  h = bnRelu(h, 'g0');
  for (let i = 1; i < n; i++) {
    h = tfl.layers
      .conv2dTranspose({
        filters: top / 2 ** i,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        useBias: false,
        kernelInitializer: init(),
        name: `g${i}_convt`,
      })
      .apply(h) as T;
    h = bnRelu(h, `g${i}`);
  }
  const image = tfl.layers
    .conv2dTranspose({
      filters: 1,
      kernelSize: 4,
      strides: 2,
      padding: 'same',
      activation: 'tanh',
      kernelInitializer: init(),
      name: 'g_image',
    })
    .apply(h) as T;
  return tfl.model({ inputs: [noise, label], outputs: image, name: 'generator' });
}

function bnRelu(h: T, name: string): T {
  // Momentum 0.9 so the moving statistics, used when sampling, follow the weights closely.
  h = tfl.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5, name: `${name}_bn` }).apply(h) as T;
  return tfl.layers.reLU({ name: `${name}_relu` }).apply(h) as T;
}

export function buildDiscriminator(c: Pick<GanConfig, 'size' | 'dWidth' | 'seed'>): tfl.LayersModel {
  const n = levels(c.size);
  const init = seeded(c.seed + 7919);
  const image = tfl.input({ shape: [c.size, c.size, 1], name: 'image' });
  const label = tfl.input({ shape: [2], name: 'label' });
  let h: T = image;
  for (let i = 0; i < n; i++) {
    h = tfl.layers
      .conv2d({
        filters: c.dWidth * 2 ** i,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        useBias: i === 0,
        kernelInitializer: init(),
        name: `d${i}_conv`,
      })
      .apply(h) as T;
    if (i > 0) h = tfl.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5, name: `d${i}_bn` }).apply(h) as T;
    h = tfl.layers.leakyReLU({ alpha: 0.2, name: `d${i}_lrelu` }).apply(h) as T;
  }
  const features = tfl.layers.flatten({ name: 'd_features' }).apply(h) as T;
  const dim = 16 * c.dWidth * 2 ** (n - 1);
  const score = tfl.layers.dense({ units: 1, kernelInitializer: init(), name: 'd_score' }).apply(features) as T;
  const embed = tfl.layers
    .dense({ units: dim, useBias: false, kernelInitializer: init(), name: 'd_embed' })
    .apply(label) as T;
  const projection = tfl.layers.dot({ axes: 1, name: 'd_projection' }).apply([embed, features]) as T;
  const logit = tfl.layers.add({ name: 'd_logit' }).apply([score, projection]) as T;
  return tfl.model({ inputs: [image, label], outputs: logit, name: 'discriminator' });
}
