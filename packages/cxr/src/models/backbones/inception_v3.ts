// InceptionV3 (Szegedy et al., 2016) as keras.applications defines it. Keras names most of its
// layers automatically (conv2d_1 ... conv2d_94, batch_normalization_N, activation_N,
// max_pooling2d_N, average_pooling2d_N, concatenate_N), and its ImageNet weight file was saved
// with those names; the layers are created here in Keras' order so that every name matches.
import * as tfl from '@tensorflow/tfjs-layers';
import { BackboneGraph, BuildOptions, LayerFactory, T } from './layers';

export const INCEPTION_V3_FEATURES = 'mixed10';

type Pad = 'same' | 'valid';

function conv2dBn(
  f: LayerFactory,
  x: T,
  filters: number,
  rows: number,
  cols: number,
  padding: Pad = 'same',
  strides = 1,
): T {
  let y = f.apply(
    tfl.layers.conv2d({
      filters,
      kernelSize: [rows, cols],
      strides,
      padding,
      useBias: false,
      name: f.auto('conv2d'),
    }),
    x,
  );
  y = f.bn(y, { axis: 3, scale: false, name: f.auto('batch_normalization') });
  return f.apply(tfl.layers.activation({ activation: 'relu', name: f.auto('activation') }), y);
}

function maxPool(f: LayerFactory, x: T): T {
  return f.apply(
    tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid', name: f.auto('max_pooling2d') }),
    x,
  );
}

function avgPool(f: LayerFactory, x: T): T {
  return f.apply(
    tfl.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same', name: f.auto('average_pooling2d') }),
    x,
  );
}

function concat(f: LayerFactory, xs: T[], name?: string): T {
  return f.apply(tfl.layers.concatenate({ axis: 3, name: name ?? f.auto('concatenate') }), xs);
}

/** mixed0-2: 35x35 at 299 px. */
function block35(f: LayerFactory, x: T, poolFilters: number, name: string): T {
  const b1 = conv2dBn(f, x, 64, 1, 1);
  let b5 = conv2dBn(f, x, 48, 1, 1);
  b5 = conv2dBn(f, b5, 64, 5, 5);
  let b3 = conv2dBn(f, x, 64, 1, 1);
  b3 = conv2dBn(f, b3, 96, 3, 3);
  b3 = conv2dBn(f, b3, 96, 3, 3);
  const bp = conv2dBn(f, avgPool(f, x), poolFilters, 1, 1);
  return concat(f, [b1, b5, b3, bp], name);
}

/** mixed4-7: 17x17, factorised 7x7 convolutions with `c` channels inside. */
function block17(f: LayerFactory, x: T, c: number, name: string): T {
  const b1 = conv2dBn(f, x, 192, 1, 1);
  let b7 = conv2dBn(f, x, c, 1, 1);
  b7 = conv2dBn(f, b7, c, 1, 7);
  b7 = conv2dBn(f, b7, 192, 7, 1);
  let b7d = conv2dBn(f, x, c, 1, 1);
  b7d = conv2dBn(f, b7d, c, 7, 1);
  b7d = conv2dBn(f, b7d, c, 1, 7);
  b7d = conv2dBn(f, b7d, c, 7, 1);
  b7d = conv2dBn(f, b7d, 192, 1, 7);
  const bp = conv2dBn(f, avgPool(f, x), 192, 1, 1);
  return concat(f, [b1, b7, b7d, bp], name);
}

/** mixed9-10: 8x8, with split 1x3/3x1 branches. */
function block8(f: LayerFactory, x: T, i: number): T {
  const b1 = conv2dBn(f, x, 320, 1, 1);
  const b3 = conv2dBn(f, x, 384, 1, 1);
  const b3a = conv2dBn(f, b3, 384, 1, 3);
  const b3b = conv2dBn(f, b3, 384, 3, 1);
  const b3c = concat(f, [b3a, b3b], `mixed9_${i}`);
  let bd = conv2dBn(f, x, 448, 1, 1);
  bd = conv2dBn(f, bd, 384, 3, 3);
  const bda = conv2dBn(f, bd, 384, 1, 3);
  const bdb = conv2dBn(f, bd, 384, 3, 1);
  const bdc = concat(f, [bda, bdb]);
  const bp = conv2dBn(f, avgPool(f, x), 192, 1, 1);
  return concat(f, [b1, b3c, bdc, bp], `mixed${9 + i}`);
}

export function inceptionV3(input: T, opts: BuildOptions = {}): BackboneGraph {
  const f = new LayerFactory(opts);
  let x = conv2dBn(f, input, 32, 3, 3, 'valid', 2);
  x = conv2dBn(f, x, 32, 3, 3, 'valid');
  x = conv2dBn(f, x, 64, 3, 3);
  x = maxPool(f, x);
  x = conv2dBn(f, x, 80, 1, 1, 'valid');
  x = conv2dBn(f, x, 192, 3, 3, 'valid');
  x = maxPool(f, x);

  f.block();
  x = block35(f, x, 32, 'mixed0');
  f.block();
  x = block35(f, x, 64, 'mixed1');
  f.block();
  x = block35(f, x, 64, 'mixed2');

  f.block(); // mixed3: 35 -> 17
  {
    const b3 = conv2dBn(f, x, 384, 3, 3, 'valid', 2);
    let bd = conv2dBn(f, x, 64, 1, 1);
    bd = conv2dBn(f, bd, 96, 3, 3);
    bd = conv2dBn(f, bd, 96, 3, 3, 'valid', 2);
    x = concat(f, [b3, bd, maxPool(f, x)], 'mixed3');
  }
  f.block();
  x = block17(f, x, 128, 'mixed4');
  f.block();
  x = block17(f, x, 160, 'mixed5');
  f.block();
  x = block17(f, x, 160, 'mixed6');
  f.block();
  x = block17(f, x, 192, 'mixed7');

  f.block(); // mixed8: 17 -> 8
  {
    let b3 = conv2dBn(f, x, 192, 1, 1);
    b3 = conv2dBn(f, b3, 320, 3, 3, 'valid', 2);
    let b7 = conv2dBn(f, x, 192, 1, 1);
    b7 = conv2dBn(f, b7, 192, 1, 7);
    b7 = conv2dBn(f, b7, 192, 7, 1);
    b7 = conv2dBn(f, b7, 192, 3, 3, 'valid', 2);
    x = concat(f, [b3, b7, maxPool(f, x)], 'mixed8');
  }
  f.block();
  x = block8(f, x, 0);
  f.block();
  x = block8(f, x, 1);

  if (opts.includeTop) {
    f.block();
    x = f.apply(tfl.layers.globalAveragePooling2d({ name: 'avg_pool' }), x);
    x = f.apply(tfl.layers.dense({ units: 1000, activation: 'softmax', name: 'predictions' }), x);
  }
  return { output: x, blocks: f.blocks };
}
