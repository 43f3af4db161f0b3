// A backbone as the ImageNet classifier it was published as, with its weights placed: what the
// tests compare with Keras' and TF.js' own models of it (the app itself only builds transfer models).
import * as tfl from '@tensorflow/tfjs-layers';
import { BackboneSpec, LocatedWeights, readBackboneWeights } from '../src/models/backbones';
import { placeWeights, readWeightFile } from '../src/models/backbones/weights';

/** The ImageNet model itself (input RGB [S,S,3] in [-1,1]; with its 1000-class top if asked). */
export async function buildImagenetModel(
  spec: BackboneSpec,
  weights: LocatedWeights | string,
  size = spec.defaultInputSize,
  opts: { includeTop?: boolean } = {},
): Promise<tfl.LayersModel> {
  const input = tfl.input({ shape: [size, size, 3], name: 'input_1' });
  const g = spec.build(input, { includeTop: opts.includeTop });
  const model = tfl.model({ inputs: input, outputs: g.output, name: spec.name });
  const map = typeof weights === 'string' ? await readWeightFile(weights) : await readBackboneWeights(weights);
  placeWeights(model.layers, map, typeof weights === 'string' ? weights : weights.path);
  return model;
}
