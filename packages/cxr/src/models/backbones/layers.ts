// Building blocks shared by the backbone definitions: Keras-style layer naming, block tracking
// for fine-tuning, batch norm that stays in inference mode, and the gray-to-RGB input step.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type {
  BatchNormalization,
  BatchNormalizationLayerArgs,
} from '@tensorflow/tfjs-layers/dist/layers/normalization';

export type T = tfl.SymbolicTensor;
type Kwargs = Record<string, unknown>;

// tfjs-layers does not export the class itself, only its factory; the class is what we extend.
const BatchNormalizationBase = tfl.layers.batchNormalization({}).constructor as typeof BatchNormalization;

/**
 * Batch norm that always normalises with its moving statistics. tfjs-layers' own layer uses
 * batch statistics (and updates the moving ones) whenever the model trains, even when the layer
 * is frozen; for a pretrained backbone that would replace ImageNet statistics with those of a
 * few X-ray batches, and with `scale: false` (InceptionV3) it fails outright. It serialises as
 * a plain BatchNormalization, so saved models load anywhere without registering anything:
 * outside training both layers compute the same thing.
 */
export class InferenceBatchNorm extends BatchNormalizationBase {
  static override className = 'BatchNormalization';
  constructor(args: BatchNormalizationLayerArgs) {
    super({ ...args, trainable: false });
  }
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    return super.call(inputs, { ...kwargs, training: false });
  }
}

/**
 * Creates layers with the names Keras gives them, so that weights saved by Keras map by name:
 * explicit names where Keras passes one, otherwise `<class>_<n>` counted per class from 1 in
 * creation order (Keras 2.0-2.2, which wrote the ImageNet weight files). Every layer is also
 * recorded in the current block; fine-tuning unfreezes whole blocks from the top.
 */
export class LayerFactory {
  private readonly counts = new Map<string, number>();
  readonly blocks: string[][] = [[]];

  /** trainableBatchNorm: plain batch norm (batch statistics in training) for end-to-end training. */
  constructor(private readonly opts: BuildOptions = {}) {}

  /** The next automatic Keras name for a class prefix such as 'conv2d'. */
  auto(prefix: string): string {
    const n = (this.counts.get(prefix) ?? 0) + 1;
    this.counts.set(prefix, n);
    return `${prefix}_${n}`;
  }

  /** Starts a new block; later layers belong to it. */
  block(): void {
    if (this.blocks[this.blocks.length - 1].length > 0) this.blocks.push([]);
  }

  apply(layer: tfl.layers.Layer, x: T | T[]): T {
    this.blocks[this.blocks.length - 1].push(layer.name);
    return layer.apply(x) as T;
  }

  bn(x: T, args: BatchNormalizationLayerArgs): T {
    const layer = this.opts.trainableBatchNorm ? tfl.layers.batchNormalization(args) : new InferenceBatchNorm(args);
    return this.apply(layer, x);
  }
}

/** What a backbone definition returns: its last feature map and its layers grouped in blocks (input to output). */
export interface BackboneGraph {
  output: T;
  blocks: string[][];
}

export interface BuildOptions {
  /** Also build the ImageNet classifier (for checking weights against a reference). */
  includeTop?: boolean;
  /**
   * Batch norm as tfjs-layers' own layer, which trains and normalises with batch statistics while the
   * model trains: for end-to-end training (recipe.endToEnd), where every layer adapts to X-ray films and
   * `cxr adapt` may later re-estimate the statistics on a site's films. Default: InferenceBatchNorm.
   */
  trainableBatchNorm?: boolean;
}

export const TO_RGB_LAYER = 'to_rgb';

/**
 * Gray [S,S,1] in [0,1] (pixel/255, what every cxr model takes) -> RGB [S,S,3] in [-1,1]
 * (pixel/127.5 - 1, the "tf" normalisation of MobileNet and InceptionV3): the gray value is
 * replicated into three channels and rescaled, as one frozen 1x1 convolution whose kernel is 2
 * and bias -1 for every channel. A plain Conv2D keeps the saved model loadable by stock
 * tfjs-layers (no custom layer to register in every process that serves it).
 */
export function grayToRgb(x: T): { output: T; layer: tfl.layers.Layer } {
  const layer = tfl.layers.conv2d({
    filters: 3,
    kernelSize: 1,
    useBias: true,
    name: TO_RGB_LAYER,
    trainable: false,
    kernelInitializer: tfl.initializers.constant({ value: 2 }),
    biasInitializer: tfl.initializers.constant({ value: -1 }),
  });
  return { output: layer.apply(x) as T, layer };
}
