// A cxr classifier cut into the pieces that explanations and the OOD gate need:
//   body:  image -> 'last_conv' feature map A            (Grad-CAM differentiates w.r.t. A)
//   neck:  A -> h, the features the final dense layer sees (the OOD gate models h)
//   dense: h -> logit, the final Dense(1) without its sigmoid
// Every cxr architecture ends in a chain after 'last_conv' (pooling/flatten, dense, dropout)
// and a Dense(1, sigmoid); that is checked here rather than assumed, so a new architecture
// that breaks the pattern fails at load with a clear message.
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

/** Logits [n] from features h [n, d]. */
export function denseLogit(parts: ModelParts, h: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.reshape(tf.add(tf.matMul(h, parts.kernel), parts.bias), [-1]) as tf.Tensor1D);
}

/** The penultimate features h [n, d] of images x [n, S, S, 1], in inference mode. */
export function features(parts: ModelParts, x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const a = parts.body.predict(x) as tf.Tensor4D;
    return tf.reshape(parts.neck.predict(a) as tf.Tensor, [x.shape[0], -1]) as tf.Tensor2D;
  });
}
