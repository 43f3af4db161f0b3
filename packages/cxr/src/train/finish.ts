// The end of every classifier run: calibration (temperature) and operating points on the
// validation split, then a cxr model folder (model.json + weights.bin + cxr.json), its model card,
// the validation predictions and metrics, and the batch-norm reference statistics `cxr adapt` uses.
import type * as tfl from '@tensorflow/tfjs-layers';
import { count, type ImageSet } from '../data/images';
import { bnLayers } from '../models/bn_moments';
import { writeBnReference } from '../models/bn_reference';
import { writeModelCard } from '../models/card';
import { saveModel } from '../models/io';
import { writeFailure } from '../make_dirs';
import { temperatureBoundNote } from '../eval/calibration';
import { MODEL_FORMAT, type ModelMeta } from '../models/metadata';
import { type Calibration, calibrateOnValidation, writeValidationFiles } from './calibrate';
import type { TtaView } from '../models/tta_views';

/** cxr.json `data` as a run records it: the data root, then whatever describes the split. */
/** The line a model trained without the not-a-chest-X-ray gate logs (a run, an ensemble or a soup). */
export function noGateLine(out: string): string {
  return `no OOD gate fitted (--no-gate): 'cxr ood fit --model ${out}' fits one later`;
}

export type DataInfo = { root: string } & Record<string, unknown>;

export interface FinishInput {
  model: tfl.LayersModel;
  train: ImageSet;
  val: ImageSet;
  outDir: string;
  /** The model's name (cxr.json `name`); a dated default comes from defaultName. */
  name?: string;
  defaultName: string;
  arch: string;
  size: number;
  /** Beyond the resize, scale and grayscale every model shares. */
  preprocessing?: Record<string, unknown>;
  tta: TtaView[];
  /** cxr.json `recipe`: the recipe as run. */
  recipe: Record<string, unknown>;
  /** cxr.json `data`: the data root (what predictions name films against) and the split. */
  dataInfo: DataInfo;
  bestEpoch: number;
  /** The phase of the best epoch, for runs that have phases. */
  bestPhase?: string;
  epochsRun: number;
  seconds: number;
  /** Batch size of the calibration's forward passes. */
  batchSize?: number;
  command?: string;
  log: (line: string) => void;
}

export async function finishRun(o: FinishInput): Promise<{ meta: ModelMeta; calibration: Calibration }> {
  const cal = await calibrateOnValidation([o.model], o.val, o.tta, o.batchSize);
  const { temperature, metrics } = cal;
  const now = new Date().toISOString();
  const meta: ModelMeta = {
    format: MODEL_FORMAT,
    name: o.name ?? o.defaultName,
    version: now.replace(/[-:]/g, '').slice(0, 15),
    arch: o.arch,
    inputSize: o.size,
    preprocessing: { resize: 'fill', scale: 1 / 255, grayscale: true, ...o.preprocessing },
    classNames: ['NORMAL', 'PNEUMONIA'],
    temperature,
    logitBias: cal.bias,
    operatingPoints: cal.operatingPoints,
    defaultOperatingPoint: 'balanced',
    tta: o.tta,
    members: [],
    recipe: o.recipe,
    data: { ...o.dataInfo, train: count(o.train), validation: count(o.val) },
    validation: {
      ...metrics,
      bestEpoch: o.bestEpoch,
      ...(o.bestPhase ? { bestPhase: o.bestPhase } : {}),
      epochsRun: o.epochsRun,
      trainingSeconds: o.seconds,
    },
    createdAt: now,
  };
  try {
    await saveModel(o.model, o.outDir, meta);
    writeModelCard(o.outDir, meta, o.command);
    writeValidationFiles(o.outDir, o.dataInfo.root, o.val.files, cal);
  } catch (e) {
    throw notWritten(e, o.outDir);
  }
  // An extra for site adaptation: a model it cannot be measured for is still a finished run.
  try {
    if (bnLayers(o.model).length > 0) await writeValidationReference(o);
  } catch (e) {
    o.log(`note: no bn-reference.json (${(e as Error).message}); 'cxr adapt' will use plain AdaBN`);
  }
  // Each epoch's line scores the plain film alone (loop.ts); this one the model as it predicts, on its test-time
  // views: said, or the two AUCs of the best epoch disagree without a reason.
  const views = o.tta.some((v) => v !== 'identity') ? ` with test-time views ${o.tta.join(', ')}` : '';
  const epochs = views ? " (each epoch's val AUC: the identity view alone)" : '';
  o.log(
    `validation (best epoch ${o.bestEpoch}${o.bestPhase ? `, ${o.bestPhase}` : ''}, T=${temperature.toFixed(3)})` +
      `${views}${epochs}: AUC ${metrics.auc?.toFixed(4)}, accuracy ${(metrics.accuracy * 100).toFixed(1)}% ` +
      `at the balanced threshold ${cal.operatingPoints.balanced.threshold.toFixed(3)}`,
  );
  const note = cal.scaling === 'temperature' ? temperatureBoundNote(temperature) : null;
  if (note) o.log(note);
  return { meta, calibration: cal };
}

/**
 * A full disk or a folder made read-only while the model was written said only "ENOSPC: no space left on device,
 * write". The trainers keep checkpoints/best until the run is finished, so --resume writes the model again.
 */
function notWritten(e: unknown, outDir: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return e;
  return new Error(
    `the trained model and its validation files could not all be written in ${outDir} (${writeFailure(e)}); ` +
      'its best epoch is kept in checkpoints/best: free some space or make the folder writable, then finish the ' +
      'run with --resume',
    { cause: e },
  );
}

/** bn-reference.json: the batch-norm inputs on the validation films, for relative adaptation. */
export async function writeValidationReference(
  o: Pick<FinishInput, 'model' | 'val' | 'outDir' | 'dataInfo'> & { members?: tfl.LayersModel[]; dirs?: string[] },
): Promise<void> {
  const split = typeof o.dataInfo.splitSeed === 'number' ? ` (split seed ${o.dataInfo.splitSeed})` : '';
  const fingerprint = typeof o.dataInfo.fingerprint === 'string' ? o.dataInfo.fingerprint : undefined;
  await writeBnReference(o.outDir, o.members ?? [o.model], o.dirs ?? [o.outDir], {
    pixels: o.val.pixels,
    n: o.val.labels.length,
    size: o.val.size,
    source: `validation split${split}`,
    fingerprint,
    labels: o.val.labels,
  });
}
