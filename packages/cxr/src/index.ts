// The library API of @cxr/app: what a program needs to use cxr without its command line.
// Everything here is also what the CLI commands call, so a program and `cxr` compute the same numbers.
//
//   import { Predictor } from '@cxr/app';
//   const predictor = await Predictor.load('models/default');
//   const p = await predictor.predict(fs.readFileSync('film.dcm'), { heatmap: true });
//   console.log(p.verdict.status, p.probability, p.label);
export { initEngine } from './engine';
export { defaultModelDir } from './paths';
export { Predictor, type Prediction, type PredictOptions } from './predict/predictor';
export { InputError } from './predict/errors';
export type { VerdictStatus } from './predict/verdict';
export { runBatch, expandPaths } from './predict/batch';
export { loadModel, readMeta, type LoadedModel } from './models/io';
export { ModelMeta, parseMeta } from './models/metadata';
export { evaluate, type Metrics } from './eval';
export { runEvaluation } from './cli/evaluate_run';
export { runTraining, resolveRecipe } from './train/run';
export { RECIPES, DEFAULT_RECIPE } from './train/presets';
export { recalibrate } from './train/calibrate';
export { runRobustness } from './robustness/run';
export { adaptModel, AdaptRefused } from './adapt/adapt';
// Hospital integration: results written back as DICOM (SR + Secondary Capture), and the job queue
// (BullMQ on Redis) that `cxr enqueue` / `cxr worker` use, for programs that feed archives to it.
export { buildResults, buildSr, buildSecondaryCapture } from './dicom_out';
export {
  enqueueFile,
  openQueue,
  queueDepth,
  redisConnection,
  startWorker,
  type JobQueue,
  type RunningWorker,
  type WorkerOptions,
} from './queue';
