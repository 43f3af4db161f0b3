// What the one trainer (trainer.ts) trains: a from-scratch architecture initialised from the run's
// seed, or an ImageNet backbone trained end to end (recipe.endToEnd: every layer, batch norm included,
// starts from ImageNet and trains from the first step; the head starts from the seed). The source says
// how the model is built and what cxr.json records about it; the loop, augmentation, balancing,
// weight averaging, calibration and the gate are the same for both.
import type * as tfl from '@tensorflow/tfjs-layers';
import { architecture } from '../models';
import { buildTransferModel, type ResolvedBackbone, resolveBackbone } from '../models/backbones';
import type { Recipe } from './recipe';
import { withSeededMathRandom } from './seeded_math_random';

export interface ModelSource {
  /** cxr.json `arch`. */
  arch: string;
  /** Input size in pixels. */
  size: number;
  /** Prefix of the dated default model name. */
  defaultName: string;
  build(): Promise<tfl.LayersModel>;
  /** cxr.json `preprocessing`, beyond the resize, scale and grayscale every model shares. */
  preprocessing: Record<string, unknown>;
  /** cxr.json `recipe` fields beyond the recipe as run (a backbone's name and weights). */
  recipeExtras: Record<string, unknown>;
}

/** What cxr.json records of a backbone: the transfer trainer's runs and end-to-end runs alike. */
export function backboneRecord(b: ResolvedBackbone, normalize: Recipe['normalize']) {
  return {
    arch: `transfer/${b.spec.name}`,
    preprocessing: {
      normalize,
      // Built into the model (layer to_rgb): nothing for a caller to do beyond the usual gray/255.
      inModel: "gray replicated to 3 channels, then x*2-1 (= pixel/127.5 - 1, the backbone's ImageNet normalisation)",
    },
    recipeExtras: {
      backbone: b.spec.name,
      backboneRequested: b.requested,
      backboneFallback: b.fallback,
      backboneWeights: { url: b.spec.weights.url, source: b.weights.source, sha256: b.weights.sha256 },
    },
  };
}

export async function modelSource(
  recipe: Recipe,
  opts: { progress?: boolean; log: (line: string) => void },
): Promise<ModelSource> {
  if (!recipe.backbone) {
    const arch = architecture(recipe.arch);
    const size = recipe.inputSize ?? arch.defaultInputSize;
    return {
      arch: arch.name,
      size,
      defaultName: arch.name,
      // Initial weights from the run's seed (TF.js would take a fresh one from Math.random).
      build: async () => withSeededMathRandom(recipe.seed, ['init'], () => arch.build(size)),
      preprocessing: { normalize: recipe.normalize },
      recipeExtras: {},
    };
  }
  if (!recipe.endToEnd) throw new Error('a backbone recipe without endToEnd trains head first (train/transfer.ts)');
  const backbone = await resolveBackbone(recipe.backbone, { weights: recipe.weights, ...opts });
  const size = recipe.inputSize ?? backbone.spec.defaultInputSize;
  opts.log(
    `backbone ${backbone.spec.name}, trained end to end: ${backbone.spec.title}; weights ${backbone.weights.path} ` +
      `(${backbone.weights.source})` +
      (backbone.fallback ? `\n  fallback: ${backbone.fallback}` : ''),
  );
  return {
    ...backboneRecord(backbone, recipe.normalize),
    size,
    defaultName: `${backbone.spec.name}-end-to-end`,
    build: async () =>
      withSeededMathRandom(recipe.seed, ['init'], async () => {
        const tm = await buildTransferModel(backbone, size, {
          dropout: recipe.headDropout ?? 0.2,
          seed: recipe.seed,
          endToEnd: true,
        });
        return tm.model;
      }),
  };
}
