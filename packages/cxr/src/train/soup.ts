// `cxr ensemble --soup`: the members' weights averaged into one model (a "model soup", Wortsman et al.
// 2022), where the ordinary ensemble averages their logits. The soup costs one model's time per film
// instead of one per member. Averaging weights only makes a model when the members lie in one basin
// of the loss: networks fine-tuned from one pretrained start can, networks whose heads started from
// different random draws usually cannot (round 13, docs/generalisation.md: three seeds of the shipped
// recipe average into a model as good as their ensemble only when a linear probe, --head-first, came
// first). A failed soup may still rank the validation films, but its raw logits shrink toward zero
// (calibration then stretches them back, and films the training never saw drift); such a soup, or one
// that ranks the validation films worse than its worst member, is refused.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { fitOodFromSets } from '../explain/ood_fit';
import { saveOod } from '../explain/ood';
import { bnLayers } from '../models/bn_moments';
import { writeModelCard } from '../models/card';
import { loadModel, type LoadedModel, saveLayersModel } from '../models/io';
import { writeDirAtomic } from '../models/dir_swap';
import type { EnsembleRecord, ModelMeta } from '../models/metadata';
import { roundWeightsToFloat16 } from '../models/weights_float16';
import { predictAllLogits, sigmoid } from '../models/infer';
import { rocAuc } from '../eval/metrics';
import { calibrateOnValidation, writeValidationFiles } from './calibrate';
import { combinedMeta, EnsembleRefused, type EnsembleOptions, memberRows, prepareMembers } from './ensemble';
import { noGateLine, writeValidationReference } from './finish';
import { temperatureBoundNote } from '../eval/calibration';

/**
 * A soup whose raw validation logits spread (standard deviation) less than this fraction of its members'
 * mean spread is refused: the average is then not a model any member resembles. Round 13's soups of
 * probe-first members spread about as far as their members; those of members without the probe did not.
 */
export const MIN_SPREAD_RATIO = 0.5;
/** ... and so is one whose validation AUC falls more than this below its worst member's. */
export const MAX_AUC_LOSS = 0.02;

/** AUC of raw logits (through the sigmoid, which keeps their order). */
const logitAuc = (labels: number[], logits: Float32Array) => rocAuc(labels, Array.from(logits, sigmoid)) ?? 0;

function std(xs: Float32Array): number {
  const m = xs.reduce((s, x) => s + x, 0) / xs.length;
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) * (x - m), 0) / xs.length);
}

/** Each layer's weight shapes, as one comparable value per layer. */
function layout(model: tfl.LayersModel): string[] {
  return model.layers.map((l) => `${l.getClassName()}(${l.getWeights().map((w) => w.shape.join('x'))})`);
}

/**
 * Sets `into`'s weights, layer by layer, to the mean of `models`' weights (batch-norm moving statistics
 * included). Layer by layer, because a model's flat weight list puts trainable weights first and the
 * members may have been saved with different layers frozen.
 */
export function averageWeightsInto(into: tfl.LayersModel, models: tfl.LayersModel[]): void {
  into.layers.forEach((layer, i) => {
    const per = models.map((m) => m.layers[i].getWeights());
    if (per[0].length === 0) return;
    const mean = per[0].map((_, k) => tf.tidy(() => tf.div(tf.addN(per.map((ws) => ws[k])), models.length)));
    layer.setWeights(mean);
    mean.forEach((t) => t.dispose());
  });
}

export async function buildSoup(o: EnsembleOptions): Promise<ModelMeta> {
  const log = o.log ?? (() => {});
  const { metas, first, out, root, tta, train, val, info } = await prepareMembers(o);
  const loaded: LoadedModel[] = [];
  try {
    for (const d of o.members) loaded.push(await loadModel(d));
    const models = loaded.map((l) => l.members[0]);
    const want = layout(models[0]);
    models.forEach((m, i) => {
      const got = layout(m);
      const at = got.findIndex((g, k) => g !== want[k]);
      if (got.length !== want.length || at >= 0) {
        throw new EnsembleRefused(
          `${o.members[i]} is not built like ${o.members[0]}` +
            (at >= 0 ? ` (layer ${at}: ${got[at]} vs ${want[at]})` : ` (${got.length} layers vs ${want.length})`) +
            ': a soup averages weights, so its members must share one architecture',
        );
      }
    });
    // Each member's raw validation logits, measured before the first model is overwritten by the average.
    const labels = Array.from(val.labels);
    const ownLogits: Float32Array[] = [];
    for (const m of models)
      ownLogits.push(await predictAllLogits([m], val.pixels, labels.length, val.size, { tta, batchSize: 64 }));
    const memberSpread = ownLogits.reduce((s, l) => s + std(l), 0) / models.length;
    const worstAuc = Math.min(...ownLogits.map((l) => logitAuc(labels, l)));
    const soup = models[0];
    averageWeightsInto(soup, models);
    const half = o.weights === 'float16';
    if (half) roundWeightsToFloat16(soup);
    const soupLogits = await predictAllLogits([soup], val.pixels, labels.length, val.size, { tta, batchSize: 64 });
    const check = {
      spreadRatio: std(soupLogits) / memberSpread,
      auc: logitAuc(labels, soupLogits),
      worstMemberAuc: worstAuc,
    };
    const figures =
      `its raw validation logits spread ${check.spreadRatio.toFixed(2)} times as far as the members', ` +
      `validation AUC ${check.auc.toFixed(4)} against the worst member's ${worstAuc.toFixed(4)}`;
    if (check.spreadRatio < MIN_SPREAD_RATIO || check.auc < worstAuc - MAX_AUC_LOSS) {
      throw new EnsembleRefused(
        `the averaged weights of ${models.length} members are not a model like them (${figures}). Members ` +
          'soup only when fine-tuned from one start (train them with --head-first); combine these as an ' +
          'ordinary ensemble (without --soup)',
      );
    }
    log(`averaged the weights of ${models.length} members: ${figures}`);
    const c = await calibrateOnValidation([soup], val, tta);
    const record: EnsembleRecord = {
      method: 'weight-soup',
      members: memberRows(
        o,
        metas,
        loaded,
        metas.map(() => null),
      ),
      ...(half ? { weights: 'float16' as const } : {}),
      check,
    };
    const meta = combinedMeta({ metas, first, root }, c, {
      name: o.name ?? `soup-${metas.map((m) => m.name).join('+')}`,
      arch: first.arch,
      members: [],
      record,
    });
    await writeDirAtomic(out, async (tmp) => {
      await saveLayersModel(soup, tmp, half ? 'float16' : 'float32');
      if (o.gate === false) {
        log(noGateLine(out));
      } else {
        log(`fitting the OOD gate on the soup's features (${train.labels.length} training images)`);
        saveOod(
          tmp,
          await fitOodFromSets(soup, train, val, {
            memberDir: tmp,
            normalize: meta.preprocessing.normalize,
            fitted: { ...info },
          }),
        );
      }
      fs.writeFileSync(path.join(tmp, 'cxr.json'), JSON.stringify(meta, null, 2) + '\n');
      if (bnLayers(soup).length > 0) {
        log(`measuring the soup's batch-norm inputs on the ${val.labels.length} validation films (bn-reference.json)`);
        await writeValidationReference({ model: soup, val, outDir: tmp, dataInfo: info });
      }
      writeModelCard(tmp, meta, o.command);
      writeValidationFiles(tmp, root, val.files, c);
    });
    log(
      `soup written to ${o.outDir}: ` +
        `validation AUC ${c.metrics.auc?.toFixed(4) ?? 'n/a'}, T=${c.temperature.toFixed(3)}, ` +
        `balanced ${c.operatingPoints.balanced.threshold.toFixed(3)}`,
    );
    const note = temperatureBoundNote(c.temperature);
    if (note) log(note);
    return meta;
  } finally {
    for (const l of loaded) l.members.forEach((m) => m.dispose());
  }
}
