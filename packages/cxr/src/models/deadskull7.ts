// The seed project's starting point: the custom CNN of the deadskull7 Keras repository
// (paired 3x3 convolutions 16/32/64/96/128, dilation 2 in the last two blocks, Dense 64,
// dropout 0.4, 150x150 input). One sigmoid unit replaces its 2-way softmax (equivalent).
import * as tf from '@tensorflow/tfjs-layers';

export function deadskull7(inputSize = 150): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 1], name: 'image' });
  let x: tf.SymbolicTensor = input;
  const blocks: Array<[number, number]> = [
    [16, 1],
    [32, 1],
    [64, 1],
    [96, 2],
    [128, 2],
  ];
  blocks.forEach(([filters, dilation], i) => {
    for (let j = 0; j < 2; j++) {
      x = tf.layers
        .conv2d({
          filters,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          dilationRate: dilation,
          name: i === blocks.length - 1 && j === 1 ? 'last_conv' : `block${i + 1}_conv${j + 1}`,
        })
        .apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers.maxPooling2d({ poolSize: 2, name: `block${i + 1}_pool` }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 64, activation: 'relu', name: 'fc1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: 0.4 }).apply(x) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'pneumonia' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'deadskull7' });
}
