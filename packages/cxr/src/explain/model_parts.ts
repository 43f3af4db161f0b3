// A cxr classifier cut into the pieces that explanations and the OOD gate need:
//   body:  image -> 'last_conv' feature map A            (Grad-CAM differentiates w.r.t. A)
//   neck:  A -> h, the features the final dense layer sees (the OOD gate models h)
//   dense: h -> logit, the final Dense(1) without its sigmoid
// Every cxr architecture ends in a chain after 'last_conv' (pooling/flatten, dense, dropout)
// and a Dense(1, sigmoid); that is checked here rather than assumed, so a new architecture
// that breaks the pattern fails at load with a clear message.
// Grad-CAM may read a finer map than 'last_conv' (camParts below).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export const FEATURE_MAP_LAYER = 'last_conv';

/**
 * Views of the model, not copies: body and neck reuse its layers, kernel and bias are its
 * variables (getWeights does not copy). Disposing the model frees them; nothing else must.
 */
export interface ModelParts {
  body: tfl.LayersModel;
  neck: tfl.LayersModel;
  kernel: tf.Tensor2D;
  bias: tf.Tensor1D;
  /** The layer whose output is h (e.g. 'gap'): recorded in ood.json. */
  featureLayer: string;
  featureDim: number;
  /** Feature-map size (height, width, channels) of 'last_conv'. */
  mapShape: [number, number, number];
}

export function splitModel(model: tfl.LayersModel): ModelParts {
  const layers = model.layers;
  const li = layers.findIndex((l) => l.name === FEATURE_MAP_LAYER);
  if (li < 0)
    throw new Error(
      `model '${model.name}' has no layer named '${FEATURE_MAP_LAYER}' (needed for Grad-CAM and the OOD gate)`,
    );
  const last = layers[layers.length - 1];
  const cfg = last.getConfig() as { units?: number; activation?: string };
  if (last.getClassName() !== 'Dense' || cfg.units !== 1 || cfg.activation !== 'sigmoid') {
    throw new Error(
      `model '${model.name}' does not end in Dense(1, sigmoid) (found ${last.getClassName()} '${last.name}')`,
    );
  }
  for (let i = li + 1; i < layers.length; i++) {
    const inbound = layers[i].inboundNodes[0]?.inboundLayers ?? [];
    if (inbound.length !== 1 || inbound[0] !== layers[i - 1]) {
      throw new Error(
        `model '${model.name}': layers after '${FEATURE_MAP_LAYER}' are not a simple chain at '${layers[i].name}'`,
      );
    }
  }
  const mapOut = layers[li].output as tfl.SymbolicTensor;
  const body = tfl.model({ inputs: model.inputs, outputs: mapOut, name: `${model.name}_body` });
  const mapShape = mapOut.shape.slice(1) as [number, number, number];
  const neckIn = tfl.input({ shape: mapShape, name: `${model.name}_neck_in` });
  let h: tfl.SymbolicTensor = neckIn;
  for (let i = li + 1; i < layers.length - 1; i++) h = layers[i].apply(h) as tfl.SymbolicTensor;
  const neck = tfl.model({ inputs: neckIn, outputs: h, name: `${model.name}_neck` });
  const featureLayer =
    li + 1 < layers.length - 1 ? lastNonDropout(layers.slice(li + 1, layers.length - 1)) : FEATURE_MAP_LAYER;
  const [kernel, bias] = last.getWeights() as [tf.Tensor2D, tf.Tensor1D];
  return {
    body,
    neck,
    kernel,
    bias,
    featureLayer,
    featureDim: kernel.shape[0],
    mapShape,
  };
}

function lastNonDropout(chain: tfl.layers.Layer[]): string {
  for (let i = chain.length - 1; i >= 0; i--) if (chain[i].getClassName() !== 'Dropout') return chain[i].name;
  return chain[chain.length - 1].name;
}

/**
 * What Grad-CAM needs: image -> feature map (body), map -> h (neck), and the final dense layer.
 * A ModelParts is one (the map is 'last_conv'); camParts may give a finer one.
 */
export type CamMap = Pick<ModelParts, 'body' | 'neck' | 'kernel' | 'bias' | 'mapShape'>;
export interface CamParts extends CamMap {
  /** The layer whose output the map is. */
  layer: string;
}

/**
 * The map Grad-CAM reads: the deepest layer before 'last_conv' with at least twice its resolution,
 * when every layer from there to the output is a simple chain (MobileNet v1: 'conv_pw_11_relu', 10×10
 * at 160 px, against 5×5); otherwise 'last_conv' itself (cxrnet: its last residual block joins two
 * branches, and a model cut inside a branch is not a model). Why: a 5×5 map paints a fifth of the
 * film per cell, and on the shipped model's validation pneumonia films the 10×10 map is the more
 * faithful one, also against random maps of its own grid, while a 20×20 map is less so
 * (`cxr experiments heatmap`, docs/heat-maps.md).
 */
export function camParts(model: tfl.LayersModel, parts: ModelParts): CamParts {
  const layers = model.layers;
  const chain = chainIntoHead(model);
  for (let j = chain.length - 1; j >= 0; j--) {
    const [h, w] = outputShape(layers[chain[j]]) ?? [0, 0];
    if (h >= 2 * parts.mapShape[0] && w >= 2 * parts.mapShape[1])
      return camPartsAt(model, parts, layers[chain[j]].name);
  }
  return { ...parts, layer: FEATURE_MAP_LAYER };
}

/** Grad-CAM's view at a named layer: 'last_conv', or one from which the rest of the model is a chain. */
export function camPartsAt(model: tfl.LayersModel, parts: ModelParts, layer: string): CamParts {
  if (layer === FEATURE_MAP_LAYER) return { ...parts, layer };
  const layers = model.layers;
  const j = layers.findIndex((l) => l.name === layer);
  if (j < 0) throw new Error(`model '${model.name}' has no layer '${layer}'`);
  const shape = outputShape(layers[j]);
  if (!chainIntoHead(model).includes(j) || !shape)
    throw new Error(
      `layer '${layer}': the model after it is not a simple chain of 4-D maps, so Grad-CAM cannot start there`,
    );
  const out = layers[j].getOutputAt(0) as tfl.SymbolicTensor;
  const body = tfl.model({ inputs: model.inputs, outputs: out, name: `${model.name}_cam_body` });
  const mapIn = tfl.input({ shape, name: `${model.name}_cam_in` });
  let x: tfl.SymbolicTensor = mapIn;
  for (let i = j + 1; i < layers.length - 1; i++) x = layers[i].apply(x) as tfl.SymbolicTensor;
  const neck = tfl.model({ inputs: mapIn, outputs: x, name: `${model.name}_cam_neck` });
  return { body, neck, kernel: parts.kernel, bias: parts.bias, mapShape: shape, layer };
}

/**
 * Indices of the layers before 'last_conv', shallowest first, from which every later layer takes
 * exactly its predecessor's output (so the model from there on is a chain), stopping at the first
 * that is not a 4-D map.
 */
function chainIntoHead(model: tfl.LayersModel): number[] {
  const layers = model.layers;
  const li = layers.findIndex((l) => l.name === FEATURE_MAP_LAYER);
  const out: number[] = [];
  for (let j = li - 1; j >= 1; j--) {
    const inbound = layers[j + 1].inboundNodes[0]?.inboundLayers ?? [];
    if (inbound.length !== 1 || inbound[0] !== layers[j] || !outputShape(layers[j])) break;
    out.unshift(j);
  }
  return out;
}

/** [height, width, channels] of a layer's (first) output when it is a 4-D map. */
function outputShape(layer: tfl.layers.Layer): [number, number, number] | null {
  const out = layer.getOutputAt(0);
  if (Array.isArray(out) || out.shape.length !== 4) return null;
  const [, h, w, c] = out.shape;
  return h && w && c ? [h, w, c] : null;
}

/** Logits [n] from features h [n, d]. */
export function denseLogit(parts: Pick<ModelParts, 'kernel' | 'bias'>, h: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.reshape(tf.add(tf.matMul(h, parts.kernel), parts.bias), [-1]) as tf.Tensor1D);
}

/** The penultimate features h [n, d] of images x [n, S, S, 1], in inference mode. */
export function features(parts: ModelParts, x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const a = parts.body.predict(x) as tf.Tensor4D;
    return tf.reshape(parts.neck.predict(a) as tf.Tensor, [x.shape[0], -1]) as tf.Tensor2D;
  });
}
