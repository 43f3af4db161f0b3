// MobileNet v1 (Howard et al., 2017) as keras.applications defines it, with the layer names of
// the TF.js team's converted Keras models (conv1, conv_dw_N, conv_pw_N, ...). Strided layers use
// 'same' padding like those models (Keras 2.1.4) and the TF-slim checkpoints they came from;
// later Keras versions pad explicitly, which is the same arithmetic at even sizes.
import * as tfl from '@tensorflow/tfjs-layers';
import { BackboneGraph, BuildOptions, LayerFactory, T } from './layers';

/** (pointwise filters, stride) of depthwise-separable blocks 1..13. */
const BLOCKS: Array<[number, number]> = [
  [64, 1],
  [128, 2],
  [128, 1],
  [256, 2],
  [256, 1],
  [512, 2],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [1024, 2],
  [1024, 1],
];

export const MOBILENET_V1_FEATURES = 'conv_pw_13_relu';

export function mobilenetV1(input: T, alpha: number, opts: BuildOptions = {}): BackboneGraph {
  const f = new LayerFactory(opts);
  let x = f.apply(
    tfl.layers.conv2d({
      filters: Math.trunc(32 * alpha),
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      useBias: false,
      name: 'conv1',
    }),
    input,
  );
  x = f.bn(x, { name: 'conv1_bn' });
  x = f.apply(tfl.layers.activation({ activation: 'relu6', name: 'conv1_relu' }), x);
  BLOCKS.forEach(([filters, stride], i) => {
    const id = i + 1;
    f.block();
    x = f.apply(
      tfl.layers.depthwiseConv2d({
        kernelSize: 3,
        strides: stride,
        padding: 'same',
        depthMultiplier: 1,
        useBias: false,
        name: `conv_dw_${id}`,
      }),
      x,
    );
    x = f.bn(x, { name: `conv_dw_${id}_bn` });
    x = f.apply(tfl.layers.activation({ activation: 'relu6', name: `conv_dw_${id}_relu` }), x);
    x = f.apply(
      tfl.layers.conv2d({
        filters: Math.trunc(filters * alpha),
        kernelSize: 1,
        padding: 'same',
        useBias: false,
        name: `conv_pw_${id}`,
      }),
      x,
    );
    x = f.bn(x, { name: `conv_pw_${id}_bn` });
    x = f.apply(tfl.layers.activation({ activation: 'relu6', name: `conv_pw_${id}_relu` }), x);
  });
  if (opts.includeTop) x = top(f, x, Math.trunc(1024 * alpha));
  return { output: x, blocks: f.blocks };
}

function top(f: LayerFactory, x: T, channels: number): T {
  f.block();
  let y = f.apply(tfl.layers.globalAveragePooling2d({ name: 'global_average_pooling2d_1' }), x);
  y = f.apply(tfl.layers.reshape({ targetShape: [1, 1, channels], name: 'reshape_1' }), y);
  y = f.apply(tfl.layers.dropout({ rate: 1e-3, name: 'dropout' }), y);
  y = f.apply(tfl.layers.conv2d({ filters: 1000, kernelSize: 1, padding: 'same', name: 'conv_preds' }), y);
  y = f.apply(tfl.layers.activation({ activation: 'softmax', name: 'act_softmax' }), y);
  return f.apply(tfl.layers.reshape({ targetShape: [1000], name: 'reshape_2' }), y);
}
