// The ImageNet backbones cxr can transfer from, by name, with where their weights live.
import { inceptionV3, INCEPTION_V3_FEATURES } from './inception_v3';
import type { BackboneGraph, BuildOptions, T } from './layers';
import { mobilenetV1, MOBILENET_V1_FEATURES } from './mobilenet_v1';
import { mobilenetV2, MOBILENET_V2_FEATURES } from './mobilenet_v2';

export type Family = 'mobilenet_v1' | 'mobilenet_v2' | 'inception_v3';

export interface WeightsSpec {
  /** 'tfjs-layers': model.json + shards; 'keras-h5': one Keras weights file. */
  format: 'tfjs-layers' | 'keras-h5';
  /** Canonical URL of model.json or of the .h5 file. */
  url: string;
  /** The file name in the cache (model.json, or the .h5's own name). */
  file: string;
  /** md5 of the file as keras.applications checks it (get_file's file_hash). */
  md5?: string;
  bytes?: number;
}

export interface BackboneSpec {
  name: string;
  family: Family;
  alpha?: number;
  title: string;
  defaultInputSize: number;
  minInputSize: number;
  /** The backbone's last feature map, the one the head pools (and Grad-CAM explains). */
  featureLayer: string;
  /** ImageNet model parameters, in millions: "the largest available" means the most of these. */
  paramsM: number;
  weights: WeightsSpec;
  build(input: T, opts?: BuildOptions): BackboneGraph;
}

const TFJS = 'https://storage.googleapis.com/tfjs-models/tfjs';
const KERAS = 'https://storage.googleapis.com/tensorflow/keras-applications';

function v1(alpha: string, paramsM: number): BackboneSpec {
  const a = Number(alpha);
  return {
    name: `mobilenet_v1_${alpha}`,
    family: 'mobilenet_v1',
    alpha: a,
    paramsM,
    title: `MobileNet v1 (alpha ${alpha}), ImageNet, TF.js Layers format`,
    defaultInputSize: 224,
    minInputSize: 32,
    featureLayer: MOBILENET_V1_FEATURES,
    weights: { format: 'tfjs-layers', url: `${TFJS}/mobilenet_v1_${alpha}_224/model.json`, file: 'model.json' },
    build: (x, o) => mobilenetV1(x, a, o),
  };
}

function v2(alpha: string, paramsM: number): BackboneSpec {
  const a = Number(alpha);
  const file = `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${alpha}_224_no_top.h5`;
  return {
    name: `mobilenet_v2_${alpha}`,
    family: 'mobilenet_v2',
    alpha: a,
    paramsM,
    title: `MobileNetV2 (alpha ${alpha}), ImageNet, Keras Applications weights`,
    defaultInputSize: 224,
    minInputSize: 32,
    featureLayer: MOBILENET_V2_FEATURES,
    weights: { format: 'keras-h5', url: `${KERAS}/mobilenet_v2/${file}`, file },
    build: (x, o) => mobilenetV2(x, a, o),
  };
}

const INCEPTION_V3_FILE = 'inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5';

export const BACKBONES: readonly BackboneSpec[] = [
  {
    name: 'inception_v3',
    family: 'inception_v3',
    paramsM: 23.9,
    title: 'InceptionV3, ImageNet, Keras Applications weights',
    defaultInputSize: 299,
    minInputSize: 75,
    featureLayer: INCEPTION_V3_FEATURES,
    weights: {
      format: 'keras-h5',
      url: `${KERAS}/inception_v3/${INCEPTION_V3_FILE}`,
      file: INCEPTION_V3_FILE,
      md5: 'bcbd6486424b2319ff4ef7d526e38f63',
      bytes: 87910968,
    },
    build: (x, o) => inceptionV3(x, o),
  },
  v1('0.25', 0.47),
  v1('0.50', 1.33),
  v1('0.75', 2.59),
  v1('1.0', 4.24),
  // Keras names the files with Python's str(alpha): 0.35, 0.5, 0.75, 1.0, 1.3, 1.4.
  v2('0.35', 1.66),
  v2('0.5', 1.95),
  v2('0.75', 2.61),
  v2('1.0', 3.47),
  v2('1.3', 5.34),
  v2('1.4', 6.06),
];

/** 'auto': InceptionV3 when its weights are here, else the largest MobileNet whose weights are. */
export const AUTO_BACKBONE = 'auto';

/**
 * A backbone by name. Accepts the listed names and common spellings: 'InceptionV3',
 * 'mobilenet-v2', 'mobilenet_v1_0.5', 'mobilenet_v1_0.25_224'; a MobileNet without alpha is 1.0.
 */
export function backboneSpec(name: string): BackboneSpec {
  const n = name
    .toLowerCase()
    .replace(/-/g, '_')
    .replace(/^inceptionv3$/, 'inception_v3')
    .replace(/^mobilenetv([12])/, 'mobilenet_v$1');
  const exact = BACKBONES.find((b) => b.name === n);
  if (exact) return exact;
  const m = /^(mobilenet_v[12])(?:_(\d+(?:\.\d+)?))?(?:_224)?$/.exec(n);
  if (m) {
    const alpha = m[2] === undefined ? 1 : Number(m[2]);
    const found = BACKBONES.find((b) => b.family === m[1] && b.alpha === alpha);
    if (found) return found;
  }
  throw new Error(
    `unknown backbone '${name}' (known: ${BACKBONES.map((b) => b.name).join(', ')}, or '${AUTO_BACKBONE}')`,
  );
}
