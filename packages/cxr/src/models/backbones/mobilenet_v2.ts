// MobileNetV2 (Sandler et al., 2018) as keras.applications defines it, with its layer names
// (Conv1, bn_Conv1, expanded_conv_*, block_N_*, Conv_1, out_relu), so that the Keras ImageNet
// weight files map onto it by name.
import * as tfl from '@tensorflow/tfjs-layers';
import { BackboneGraph, BuildOptions, LayerFactory, T } from './layers';

export const MOBILENET_V2_FEATURES = 'out_relu';

/** (filters, stride, expansion) of inverted residual blocks 0..16. */
const BLOCKS: Array<[number, number, number]> = [
  [16, 1, 1],
  [24, 2, 6],
  [24, 1, 6],
  [32, 2, 6],
  [32, 1, 6],
  [32, 1, 6],
  [64, 2, 6],
  [64, 1, 6],
  [64, 1, 6],
  [64, 1, 6],
  [96, 1, 6],
  [96, 1, 6],
  [96, 1, 6],
  [160, 2, 6],
  [160, 1, 6],
  [160, 1, 6],
  [320, 1, 6],
];

/** TF-slim's rule: channels rounded to a multiple of 8, never more than 10 % below the target. */
export function makeDivisible(v: number, divisor = 8): number {
  let n = Math.max(divisor, Math.trunc(v + divisor / 2) - (Math.trunc(v + divisor / 2) % divisor));
  if (n < 0.9 * v) n += divisor;
  return n;
}

const BN = { epsilon: 1e-3, momentum: 0.999 };

function channels(x: T): number {
  return x.shape[x.shape.length - 1] as number;
}

/** Keras' correct_pad: the padding 'same' would use for a 3x3 stride-2 window, made explicit. */
function correctPad(x: T): [[number, number], [number, number]] {
  const [h, w] = [x.shape[1] as number, x.shape[2] as number];
  return [
    [h % 2, 1],
    [w % 2, 1],
  ];
}

function invertedResidual(
  f: LayerFactory,
  inputs: T,
  filters: number,
  stride: number,
  expansion: number,
  alpha: number,
  id: number,
): T {
  const inChannels = channels(inputs);
  const pointwise = makeDivisible(Math.trunc(filters * alpha));
  let prefix = `block_${id}_`;
  let x = inputs;
  if (id) {
    x = f.apply(
      tfl.layers.conv2d({
        filters: expansion * inChannels,
        kernelSize: 1,
        padding: 'same',
        useBias: false,
        name: `${prefix}expand`,
      }),
      x,
    );
    x = f.bn(x, { ...BN, name: `${prefix}expand_BN` });
    x = f.apply(tfl.layers.reLU({ maxValue: 6, name: `${prefix}expand_relu` }), x);
  } else {
    prefix = 'expanded_conv_';
  }
  if (stride === 2) x = f.apply(tfl.layers.zeroPadding2d({ padding: correctPad(x), name: `${prefix}pad` }), x);
  x = f.apply(
    tfl.layers.depthwiseConv2d({
      kernelSize: 3,
      strides: stride,
      useBias: false,
      padding: stride === 1 ? 'same' : 'valid',
      name: `${prefix}depthwise`,
    }),
    x,
  );
  x = f.bn(x, { ...BN, name: `${prefix}depthwise_BN` });
  x = f.apply(tfl.layers.reLU({ maxValue: 6, name: `${prefix}depthwise_relu` }), x);
  x = f.apply(
    tfl.layers.conv2d({ filters: pointwise, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}project` }),
    x,
  );
  x = f.bn(x, { ...BN, name: `${prefix}project_BN` });
  if (inChannels === pointwise && stride === 1) return f.apply(tfl.layers.add({ name: `${prefix}add` }), [inputs, x]);
  return x;
}

export function mobilenetV2(input: T, alpha: number, opts: BuildOptions = {}): BackboneGraph {
  const f = new LayerFactory(opts);
  let x = f.apply(
    tfl.layers.conv2d({
      filters: makeDivisible(32 * alpha),
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      useBias: false,
      name: 'Conv1',
    }),
    input,
  );
  x = f.bn(x, { ...BN, name: 'bn_Conv1' });
  x = f.apply(tfl.layers.reLU({ maxValue: 6, name: 'Conv1_relu' }), x);
  BLOCKS.forEach(([filters, stride, expansion], id) => {
    f.block();
    x = invertedResidual(f, x, filters, stride, expansion, alpha, id);
  });
  // The last 1x1 conv stays in block 16's group: "the top block" is block 16 plus it.
  x = f.apply(
    tfl.layers.conv2d({
      filters: alpha > 1 ? makeDivisible(1280 * alpha) : 1280,
      kernelSize: 1,
      useBias: false,
      name: 'Conv_1',
    }),
    x,
  );
  x = f.bn(x, { ...BN, name: 'Conv_1_bn' });
  x = f.apply(tfl.layers.reLU({ maxValue: 6, name: 'out_relu' }), x);
  if (opts.includeTop) {
    f.block();
    x = f.apply(tfl.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }), x);
    x = f.apply(tfl.layers.dense({ units: 1000, activation: 'softmax', name: 'predictions' }), x);
  }
  return { output: x, blocks: f.blocks };
}
