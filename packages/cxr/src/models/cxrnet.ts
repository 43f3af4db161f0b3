// cxr's own architecture, designed for accuracy per CPU-second on 2 cores: a stride-2 stem
// and four residual stages that each halve the resolution, so most compute happens on small
// feature maps; global average pooling keeps the head tiny and makes Grad-CAM meaningful.
import * as tf from '@tensorflow/tfjs-layers';

type T = tf.SymbolicTensor;

function convBn(x: T, filters: number, kernelSize: number, strides: number, name: string, relu: boolean): T {
  let y = tf.layers
    .conv2d({
      filters,
      kernelSize,
      strides,
      padding: 'same',
      useBias: false,
      name: `${name}_conv`,
      kernelInitializer: 'heNormal',
    })
    .apply(x) as T;
  y = tf.layers.batchNormalization({ name: `${name}_bn`, momentum: 0.9 }).apply(y) as T;
  return relu ? (tf.layers.activation({ activation: 'relu', name: `${name}_relu` }).apply(y) as T) : y;
}

function residual(x: T, filters: number, strides: number, name: string): T {
  const y = convBn(convBn(x, filters, 3, strides, `${name}_a`, true), filters, 3, 1, `${name}_b`, false);
  const shortcut = convBn(x, filters, 1, strides, `${name}_proj`, false);
  const sum = tf.layers.add({ name: `${name}_add` }).apply([y, shortcut]) as T;
  return tf.layers.activation({ activation: 'relu', name: `${name}_out` }).apply(sum) as T;
}

export interface CxrNetOptions {
  inputSize?: number;
  widths?: number[];
  dropout?: number;
}

export function cxrnet(opts: CxrNetOptions = {}): tf.LayersModel {
  const inputSize = opts.inputSize ?? 192;
  const widths = opts.widths ?? [32, 64, 128, 192];
  const input = tf.input({ shape: [inputSize, inputSize, 1], name: 'image' });
  let x = convBn(input, 24, 3, 2, 'stem', true);
  widths.forEach((w, i) => {
    x = residual(x, w, 2, i === widths.length - 1 ? 'last' : `stage${i + 1}`);
  });
  // 'last_conv' names the feature map Grad-CAM reads.
  x = tf.layers.activation({ activation: 'linear', name: 'last_conv' }).apply(x) as T;
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as T;
  x = tf.layers.dropout({ rate: opts.dropout ?? 0.3 }).apply(x) as T;
  const output = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'pneumonia' }).apply(x) as T;
  return tf.model({ inputs: input, outputs: output, name: 'cxrnet' });
}
