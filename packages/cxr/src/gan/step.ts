// One GAN iteration: a discriminator update on a real and a fake batch (separate forward
// passes, so each batch normalises with its own statistics, as in DCGAN), then a generator
// update through the discriminator. Each optimiser only touches its own network's variables.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { GanConfig } from './config';

export interface Nets {
  g: tfl.LayersModel;
  d: tfl.LayersModel;
  optG: tf.Optimizer;
  optD: tf.Optimizer;
}

export interface StepStats {
  dLoss: number;
  gLoss: number;
  /** Mean discriminator probability (bce) or score (hinge) on real and on fake images. */
  dReal: number;
  dFake: number;
}

export function makeNets(g: tfl.LayersModel, d: tfl.LayersModel, c: GanConfig): Nets {
  return { g, d, optG: tf.train.adam(c.lr, c.beta1, c.beta2), optD: tf.train.adam(c.lr, c.beta1, c.beta2) };
}

/** Trainable variables in a fixed order: Adam's slots are matched to variables by position. */
export function trainables(m: tfl.LayersModel): tf.Variable[] {
  return m.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** Numerically stable sigmoid cross-entropy with logits, mean over the batch. */
function bceWithLogits(logits: tf.Tensor, target: number): tf.Scalar {
  return tf.mean(
    tf.add(tf.sub(tf.relu(logits), tf.mul(logits, target)), tf.log1p(tf.exp(tf.neg(tf.abs(logits))))),
  ) as tf.Scalar;
}

function dLossOf(real: tf.Tensor, fake: tf.Tensor, c: GanConfig): tf.Scalar {
  if (c.loss === 'hinge')
    return tf.add(tf.mean(tf.relu(tf.sub(1, real))), tf.mean(tf.relu(tf.add(1, fake)))) as tf.Scalar;
  return tf.add(bceWithLogits(real, c.realTarget), bceWithLogits(fake, 0)) as tf.Scalar;
}

function gLossOf(fake: tf.Tensor, c: GanConfig): tf.Scalar {
  return c.loss === 'hinge' ? (tf.neg(tf.mean(fake)) as tf.Scalar) : bceWithLogits(fake, 1);
}

function summary(t: tf.Tensor, c: GanConfig): tf.Scalar {
  return c.loss === 'hinge' ? tf.mean(t) : tf.mean(tf.sigmoid(t));
}

/**
 * real: [b, s, s, 1] in [-1, 1]; labels: one-hot [b, 2] (fakes are made for the same labels);
 * z1, z2: noise for the discriminator's and the generator's update.
 */
export function ganStep(
  nets: Nets,
  real: tf.Tensor4D,
  labels: tf.Tensor2D,
  z1: tf.Tensor2D,
  z2: tf.Tensor2D,
  c: GanConfig,
): StepStats {
  const { g, d, optG, optD } = nets;
  const held: { means?: tf.Tensor } = {};
  const dLoss = optD.minimize(
    () => {
      // Only the discriminator's variables are differentiated, so nothing flows back into g.
      const fake = g.apply([z1, labels], { training: true }) as tf.Tensor;
      const sReal = d.apply([real, labels], { training: true }) as tf.Tensor;
      const sFake = d.apply([fake, labels], { training: true }) as tf.Tensor;
      held.means = tf.keep(tf.stack([summary(sReal, c), summary(sFake, c)]));
      return dLossOf(sReal, sFake, c);
    },
    true,
    trainables(d),
  )!;
  const gLoss = optG.minimize(
    () => {
      const fake = g.apply([z2, labels], { training: true }) as tf.Tensor;
      return gLossOf(d.apply([fake, labels], { training: true }) as tf.Tensor, c);
    },
    true,
    trainables(g),
  )!;
  const [dl, gl] = [dLoss.dataSync()[0], gLoss.dataSync()[0]];
  const [dReal, dFake] = held.means!.dataSync();
  tf.dispose([dLoss, gLoss, held.means!]);
  return { dLoss: dl, gLoss: gl, dReal, dFake };
}
