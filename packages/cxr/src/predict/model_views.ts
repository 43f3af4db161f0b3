// The views a Predictor makes of its loaded model, and what must be disposed of them: the pieces the OOD gate and
// Grad-CAM need (explain/model_parts.ts), the gate itself (ood.json), and the member with its feature layer as a
// second output (one pass gives the logit and the gate's features).
import * as path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { type CamParts, camParts, type ModelParts, splitModel } from '../explain/model_parts';
import { loadOod, type OodModel } from '../explain/ood';
import type { FeatureTap } from '../models/infer';
import type { LoadedModel } from '../models/io';

export interface ModelViews {
  parts: ModelParts[] | null;
  /** Grad-CAM's view of each member (a finer map than the gate's where the model allows). */
  cams: CamParts[] | null;
  /** Why there are no heat maps (the model could not be split at its feature layer); null when there are. */
  camProblem: string | null;
  ood: OodModel | null;
  /** The OOD member with its feature layer as a second output: features from the prediction's own pass. */
  tap: FeatureTap | null;
  /** What limits the service (no ood.json, no Grad-CAM layer...), for Predictor.notes. */
  notes: string[];
}

export function modelViews(loaded: LoadedModel): ModelViews {
  const { meta } = loaded;
  const notes: string[] = [];
  let parts: ModelParts[] | null = null;
  let camProblem: string | null = null;
  try {
    parts = loaded.members.map(splitModel);
  } catch (e) {
    camProblem = `heat maps and the OOD gate are unavailable: ${(e as Error).message}`;
    notes.push(camProblem);
  }
  const split = parts;
  const cams = split ? loaded.members.map((m, i) => camParts(m, split[i])) : null;
  let ood: OodModel | null = null;
  if (parts) {
    const memberDir = meta.members.length ? path.join(loaded.dir, meta.members[0]) : loaded.dir;
    const found = loadOod(loaded.dir, memberDir);
    if (found.model && found.model.member < parts.length && found.model.dim === parts[found.model.member].featureDim) {
      ood = found.model;
    } else if (found.model) {
      notes.push("ood.json does not match this model's features: the OOD gate is off");
    } else {
      notes.push(found.problem ?? `no ood.json in ${loaded.dir}: the OOD gate is off (fit it with 'cxr ood fit')`);
    }
  }
  let tap: FeatureTap | null = null;
  if (ood) {
    const m = loaded.members[ood.member];
    try {
      // Node 0 is the layer in the member's own graph (splitModel gave it a second one).
      tap = {
        member: ood.member,
        model: tfl.model({
          inputs: m.inputs,
          outputs: [m.outputs[0], m.getLayer(ood.featureLayer).getOutputAt(0) as tfl.SymbolicTensor],
        }),
      };
    } catch {
      tap = null; // features() runs the second pass instead
    }
  }
  return { parts, cams, camProblem, ood, tap, notes };
}

/**
 * Frees the model and what its views hold. A neck (splitModel's, a finer Grad-CAM map's) applies the member's own
 * layers once more, and TF.js counts each use: those layers' weights are freed only once the neck is disposed too
 * (a load of the shipped model left 60 tensors). Bodies and the feature tap reuse the member's graph without
 * counting a use, so disposing them would free layers the member still holds: the garbage collector takes them.
 */
export function disposeViews(loaded: LoadedModel, views: Pick<ModelViews, 'parts' | 'cams'>): void {
  for (const m of loaded.members) m.dispose();
  const necks = new Set([...(views.parts ?? []), ...(views.cams ?? [])].map((p) => p.neck));
  for (const neck of necks) neck.dispose();
}
