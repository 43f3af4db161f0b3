// Binary cross-entropy on the sigmoid output with label smoothing and per-class weights.
// Written as a tfjs-layers loss function so model.trainOnBatch keeps the whole step on the engine.
import * as tf from '@tensorflow/tfjs-core';

export function weightedBce(labelSmoothing: number, classWeights: [number, number] = [1, 1]) {
  return (yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor =>
    tf.tidy(() => {
      const eps = 1e-7;
      const p = tf.clipByValue(yPred, eps, 1 - eps);
      const y = labelSmoothing > 0 ? tf.add(tf.mul(yTrue, 1 - labelSmoothing), labelSmoothing / 2) : yTrue;
      const bce = tf.neg(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p)))));
      if (classWeights[0] === 1 && classWeights[1] === 1) return tf.mean(bce);
      const w = tf.add(tf.mul(yTrue, classWeights[1] - classWeights[0]), classWeights[0]);
      return tf.div(tf.sum(tf.mul(bce, w)), tf.sum(w));
    });
}
