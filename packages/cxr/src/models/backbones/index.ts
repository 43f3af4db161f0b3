// ImageNet backbones for transfer learning: pick one by name (or 'auto'), find or fetch its
// weights, and build either the plain ImageNet model (RGB in [-1,1]) or cxr's transfer model:
//
//   image [S,S,1] in [0,1] -> to_rgb (gray replicated to RGB, x*2-1) -> backbone
//     -> last_conv (the backbone's last feature map, for Grad-CAM) -> gap -> dropout -> pneumonia Dense(1, sigmoid)
//
// The transfer model takes exactly what every cxr model takes, so evaluate, predict, serve and
// Grad-CAM use it unchanged.
import * as tfl from '@tensorflow/tfjs-layers';
import { grayToRgb, InferenceBatchNorm, T, TO_RGB_LAYER } from './layers';
import { AUTO_BACKBONE, BACKBONES, BackboneSpec, backboneSpec } from './registry';
import { fetchWeights, LocatedWeights, locateWeights } from './store';
import { placeWeights, readWeightFile, WeightMap } from './weights';

export { AUTO_BACKBONE, BACKBONES, backboneSpec } from './registry';
export type { BackboneSpec } from './registry';
export { fetchWeights, locateWeights, backboneCacheDir } from './store';
export type { LocatedWeights } from './store';
export { InferenceBatchNorm } from './layers';

export interface ResolvedBackbone {
  spec: BackboneSpec;
  weights: LocatedWeights;
  /** What was asked for ('auto' or a name). */
  requested: string;
  /** Why another backbone than InceptionV3 is used for 'auto', or null. */
  fallback: string | null;
}

export interface ResolveOptions {
  /** A local weights path (TF.js folder or .h5); skips the cache and the download. */
  weights?: string;
  /** Download missing weights (default true). */
  fetch?: boolean;
  progress?: boolean;
  log?: (line: string) => void;
}

/**
 * A backbone with its weights. 'auto' means InceptionV3 if its weights are present, otherwise
 * the largest MobileNet whose weights are present, otherwise an attempt to download InceptionV3.
 */
export async function resolveBackbone(name: string, opts: ResolveOptions = {}): Promise<ResolvedBackbone> {
  const log = opts.log ?? (() => {});
  if (name !== AUTO_BACKBONE) {
    const spec = backboneSpec(name);
    const found = locateWeights(spec, opts.weights);
    if (found) return { spec, weights: found, requested: name, fallback: null };
    if (opts.fetch === false)
      throw new Error(`no weights for ${spec.name}: run 'cxr backbone fetch ${spec.name}' or pass --weights PATH`);
    return {
      spec,
      weights: await fetchWeights(spec, { progress: opts.progress, log }),
      requested: name,
      fallback: null,
    };
  }
  if (opts.weights) throw new Error(`--weights needs a named --backbone (not '${AUTO_BACKBONE}')`);
  const inception = backboneSpec('inception_v3');
  const present = BACKBONES.map((spec) => ({ spec, weights: locateWeights(spec) })).filter(
    (b): b is { spec: BackboneSpec; weights: LocatedWeights } => b.weights !== null,
  );
  const inc = present.find((b) => b.spec === inception);
  if (inc) return { ...inc, requested: name, fallback: null };
  const mobile = present.sort((a, b) => b.spec.paramsM - a.spec.paramsM)[0];
  if (mobile) {
    const fallback =
      `InceptionV3 weights not found (run 'cxr backbone fetch ${inception.name}' to get them); ` +
      `using the largest MobileNet available, ${mobile.spec.name}`;
    return { ...mobile, requested: name, fallback };
  }
  if (opts.fetch === false)
    throw new Error(`no backbone weights found; run 'cxr backbone fetch inception_v3' (or a MobileNet)`);
  return {
    spec: inception,
    weights: await fetchWeights(inception, { progress: opts.progress, log }),
    requested: name,
    fallback: null,
  };
}

const weightCache = new Map<string, WeightMap>();

/** The weights of a located backbone, read once per process. */
export async function readBackboneWeights(w: LocatedWeights): Promise<WeightMap> {
  const key = `${w.path}:${Object.values(w.sha256).join(',')}`;
  let m = weightCache.get(key);
  if (!m) {
    m = await readWeightFile(w.path);
    weightCache.clear(); // one backbone at a time is all a run needs; do not pin 90 MB per name
    weightCache.set(key, m);
  }
  return m;
}

export interface TransferModel {
  model: tfl.LayersModel;
  /** Backbone layer names by block, input to output (fine-tuning unfreezes from the end). */
  blocks: string[][];
  /** Variables set from the ImageNet weights. */
  placed: number;
}

export const FEATURE_MAP_LAYER = 'last_conv';
export const POOL_LAYER = 'gap';
export const HEAD_LAYER = 'pneumonia';

/**
 * cxr's transfer model for gray [size,size,1] input, head freshly initialised. The backbone is frozen,
 * or with `endToEnd` trainable as a whole, batch norm included (only the to_rgb step stays fixed).
 */
export async function buildTransferModel(
  b: ResolvedBackbone,
  size: number,
  opts: { dropout?: number; seed?: number; endToEnd?: boolean } = {},
): Promise<TransferModel> {
  if (size < b.spec.minInputSize)
    throw new Error(`${b.spec.name} needs at least ${b.spec.minInputSize} px input, got ${size}`);
  // tfjs-layers' batch norm cannot train without its scale, and InceptionV3's has none.
  if (opts.endToEnd && b.spec.family === 'inception_v3')
    throw new Error(`end-to-end training needs a MobileNet backbone (${b.spec.name}'s batch norm has no scale)`);
  const input = tfl.input({ shape: [size, size, 1], name: 'image' });
  const rgb = grayToRgb(input).output;
  const g = b.spec.build(rgb, { trainableBatchNorm: opts.endToEnd });
  let x: T = tfl.layers.activation({ activation: 'linear', name: FEATURE_MAP_LAYER }).apply(g.output) as T;
  x = tfl.layers.globalAveragePooling2d({ name: POOL_LAYER }).apply(x) as T;
  x = tfl.layers.dropout({ rate: opts.dropout ?? 0.2, name: 'dropout' }).apply(x) as T;
  const out = tfl.layers
    .dense({
      units: 1,
      activation: 'sigmoid',
      name: HEAD_LAYER,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: opts.seed }),
    })
    .apply(x) as T;
  const model = tfl.model({ inputs: input, outputs: out, name: `transfer_${b.spec.name.replace(/\./g, '_')}` });
  const names = new Set(g.blocks.flat());
  const backboneLayers = model.layers.filter((l) => names.has(l.name));
  const { placed } = placeWeights(backboneLayers, await readBackboneWeights(b.weights), b.weights.path);
  if (opts.endToEnd) model.getLayer(TO_RGB_LAYER).trainable = false;
  else freezeBackbone(model, g.blocks, 0);
  return { model, blocks: g.blocks, placed };
}

/**
 * Freezes the backbone except its top `unfrozenBlocks` blocks. Batch norm stays frozen (and in
 * inference mode) even there: its statistics come from ImageNet-sized batches, and re-estimating
 * them from small X-ray batches is the usual way fine-tuning goes wrong. The input step
 * (to_rgb) never trains. Recompile afterwards: tfjs-layers collects trainable weights at compile.
 */
export function freezeBackbone(model: tfl.LayersModel, blocks: string[][], unfrozenBlocks: number): void {
  const open = new Set(blocks.slice(Math.max(0, blocks.length - unfrozenBlocks)).flat());
  for (const name of blocks.flat()) {
    const layer = model.getLayer(name);
    layer.trainable = open.has(name) && !(layer instanceof InferenceBatchNorm);
  }
  model.getLayer(TO_RGB_LAYER).trainable = false;
}
