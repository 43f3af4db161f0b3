// The reference CNN of the engine benchmark (bench/train-step) and of the baseline figures:
// four Conv(3x3,same,relu)->BatchNorm->MaxPool2 blocks (32/64/128/128), GAP, Dense(1, sigmoid).
import * as tf from '@tensorflow/tfjs-layers';

export function reference(inputSize = 128): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 1], name: 'image' });
  let x: tf.SymbolicTensor = input;
  [32, 64, 128, 128].forEach((filters, i) => {
    x = tf.layers
      .conv2d({
        filters,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        name: i === 3 ? 'last_conv' : `conv${i + 1}`,
      })
      .apply(x) as tf.SymbolicTensor;
    x = tf.layers.batchNormalization({ name: `bn${i + 1}` }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'pneumonia' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'reference' });
}
