// The CNN of the madz2000 Kaggle notebook ("Pneumonia Detection using CNN"): five conv blocks
// 32/64/64/128/256 with batch norm, dropout and 'same' max pooling, Dense 128, 150x150x1 input.
import * as tf from '@tensorflow/tfjs-layers';

export function madz2000(inputSize = 150): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 1], name: 'image' });
  let x: tf.SymbolicTensor = input;
  const blocks: Array<[number, number]> = [
    [32, 0],
    [64, 0.1],
    [64, 0],
    [128, 0.2],
    [256, 0.2],
  ];
  blocks.forEach(([filters, dropout], i) => {
    const last = i === blocks.length - 1;
    x = tf.layers
      .conv2d({
        filters,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        name: last ? 'last_conv' : `block${i + 1}_conv`,
      })
      .apply(x) as tf.SymbolicTensor;
    if (dropout > 0) x = tf.layers.dropout({ rate: dropout }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.batchNormalization({ name: `block${i + 1}_bn` }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same' }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 128, activation: 'relu', name: 'fc1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: 0.2 }).apply(x) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'pneumonia' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'madz2000' });
}
