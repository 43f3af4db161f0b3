// The epoch loop of every classifier recipe (from scratch, the transfer head, fine-tuning): per
// batch the learning rate from the schedule and one model.trainOnBatch; per epoch validation AUC,
// a log.jsonl line, the best model on validation AUC, early stopping, and a checkpoint of model,
// optimiser slots and loop state that --resume continues from. What differs between recipes comes
// in through a Phase: the batch input, the validation logits, what the loop state carries.
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { SingleBar } from 'cli-progress';
import type { Seed } from '../data/random';
import { rocAuc } from '../eval';
import { saveLayersModel } from '../models/io';
import { writeDirAtomic } from '../models/dir_swap';
import { sigmoid } from '../models/infer';
import { writeFailure } from '../make_dirs';
import { appendRunLog } from '../report/run_log';
import { LoopState, saveCheckpoint } from './checkpoint';
import { setLearningRate } from './optim';
import { withSeededMathRandom } from './seeded_math_random';
import type { Schedule } from './schedule';
import type { WeightAverage } from './weight_average';

/** "1 epoch", "2 epochs": a run of one epoch is common in smoke runs, and "1 epochs" read as a typo. */
export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export interface ValidationSummary {
  auc: number;
  /** Accuracy at probability 0.5. */
  acc: number;
  /** Mean binary cross-entropy. */
  loss: number;
}

function meanBce(labels: ArrayLike<number>, logits: Float32Array): number {
  let s = 0;
  for (let i = 0; i < logits.length; i++) {
    const p = Math.min(1 - 1e-7, Math.max(1e-7, sigmoid(logits[i])));
    s -= labels[i] ? Math.log(p) : Math.log(1 - p);
  }
  return s / Math.max(1, logits.length);
}

export function summarizeValidation(labels: number[], logits: Float32Array): ValidationSummary {
  const probs = Array.from(logits, sigmoid);
  return {
    auc: rocAuc(labels, probs) ?? 0,
    acc: probs.reduce((s, p, i) => s + (+(p >= 0.5) === labels[i] ? 1 : 0), 0) / Math.max(1, labels.length),
    loss: meanBce(labels, logits),
  };
}

export interface Phase<S extends LoopState> {
  /** Written as `phase` on each log line when set; also names the phase in messages. */
  name?: 'head' | 'fine-tune';
  /** The loop state; the loop updates it in place (epoch, step, best, schedule, elapsed time). */
  state: S;
  /** The run's seed: each step's dropout masks are drawn from it (train/seeded_math_random.ts). */
  seed: Seed;
  /** Epochs are numbered across phases: this one runs from state.epoch up to endEpoch. */
  endEpoch: number;
  /** "epoch 3/10" and the like, for the per-epoch log line. */
  epochTitle(epoch: number): string;
  model: tfl.LayersModel;
  optimizer: tf.Optimizer;
  schedule: Schedule;
  /** Steps taken before this phase: a phase's schedule starts from its own step 0. */
  stepsBefore?: number;
  batchSize: number;
  /** Training labels, indexed like order()'s indices. */
  labels: ArrayLike<number>;
  /** Sample order of an epoch (shuffling and class balancing). */
  order(epoch: number): number[];
  /** The model input of a batch (the loop disposes it). */
  input(indices: number[], epoch: number, batch: number): tf.Tensor;
  /** Blends the batch's films and labels (mixup, cutmix: data/mix.ts); returns new tensors. */
  mix?(x: tf.Tensor, y: tf.Tensor, epoch: number, batch: number): { x: tf.Tensor; y: tf.Tensor };
  /** Validation logits of the model as it is now, and the labels they go with. */
  validate(): Promise<Float32Array>;
  valLabels: number[];
  /**
   * Weight averaging (weight_average.ts): updated after every step; validation, the best model and
   * early stopping see the averaged weights, training continues on the raw ones.
   */
  average?: WeightAverage;
  /** Epochs without a better validation AUC before stopping; 0 never stops early. */
  patience: number;
  /** The epoch patience counts from (default: the best epoch). */
  patienceFrom?(state: S): number;
  /** Where the best model so far and the per-epoch checkpoint go. */
  bestDir: string;
  lastDir: string;
  /** State fields to set on a new best epoch / at the end of each epoch, before the checkpoint. */
  onBest?(state: S): void;
  onEpochEnd?(state: S): void;
  logFile: string;
  /** Date.now() of the run's start, counting time spent before a resume. */
  started: number;
  progress?: boolean;
  log: (line: string) => void;
}

function words(name: Phase<LoopState>['name']) {
  if (name === 'head') return { diverged: 'training', stopping: 'early stopping the head', phase: 'the head' };
  if (name === 'fine-tune') return { diverged: 'fine-tuning', stopping: 'early stopping fine-tuning', phase: name };
  return { diverged: 'training', stopping: 'early stopping', phase: 'training' };
}

/**
 * The ends of epochs being written now (log line, best model, checkpoint). Ctrl-C and SIGTERM wait for them
 * (cli/interrupt.ts): a run stopped between an epoch's line and its checkpoint lost an epoch it had reported.
 */
const ending = new Set<Promise<boolean>>();

/** Resolves once no epoch's end is being written (at once when none is). */
export async function epochEndsWritten(): Promise<void> {
  while (ending.size > 0) await Promise.allSettled(ending);
}

/** Runs the phase's epochs; returns whether it stopped early. */
export async function runEpochs<S extends LoopState>(p: Phase<S>): Promise<boolean> {
  const { state, schedule, batchSize } = p;
  const w = words(p.name);
  const before = p.stepsBefore ?? 0;
  // The checkpoint records an early stop: a run killed after it (in the phase that follows, or the end of the
  // run) resumes to what the uninterrupted run trained, not to more epochs that could make a new best.
  const key = p.name ?? 'train';
  if (state.stoppedEarly === key) {
    p.log(`${w.phase} stopped early after epoch ${state.epoch}: no further epochs`);
    return true;
  }
  for (let epoch = state.epoch; epoch < p.endEpoch; epoch++) {
    const t0 = Date.now();
    const indices = p.order(epoch);
    const steps = Math.ceil(indices.length / batchSize);
    const bar = p.progress
      ? new SingleBar({
          format: `${p.epochTitle(epoch)} [{bar}] {value}/{total} batches | loss {loss} | eta {eta_formatted} | {last}`,
          stream: process.stderr,
          hideCursor: true,
        })
      : null;
    bar?.start(steps, 0, { loss: '-', last: state.bestAuc >= 0 ? `best val AUC ${state.bestAuc.toFixed(4)}` : '' });
    let lossSum = 0;
    for (let b = 0; b < steps; b++) {
      const idx = indices.slice(b * batchSize, (b + 1) * batchSize);
      setLearningRate(p.optimizer, schedule.lr(state.step - before, steps));
      let x = p.input(idx, epoch, b);
      let y: tf.Tensor = tf.tensor2d(
        Float32Array.from(idx, (i) => p.labels[i]),
        [idx.length, 1],
      );
      if (p.mix) {
        const mixed = p.mix(x, y, epoch, b);
        tf.dispose([x, y]);
        ({ x, y } = mixed);
      }
      const loss = (await withSeededMathRandom(p.seed, [p.name ?? 'train', epoch, b], () =>
        p.model.trainOnBatch(x, y),
      )) as number;
      tf.dispose([x, y]);
      if (!Number.isFinite(loss))
        throw new Error(`${w.diverged} diverged: loss ${loss} at epoch ${epoch + 1}, batch ${b + 1}`);
      lossSum += loss;
      state.step++;
      p.average?.update();
      bar?.update(b + 1, { loss: (lossSum / (b + 1)).toFixed(4) });
    }
    bar?.stop();
    const trainSeconds = (Date.now() - t0) / 1000;

    const putBack = p.average?.swapIn();
    const v = summarizeValidation(p.valLabels, await p.validate());
    const ended = endEpoch(p, epoch, v, { loss: lossSum / steps, steps, t0, trainSeconds }, putBack);
    ending.add(ended);
    try {
      if (await ended) return true;
    } catch (e) {
      throw notSaved(e, p, epoch);
    } finally {
      ending.delete(ended);
    }
  }
  return false;
}

/**
 * A file-system error while an epoch's end was written (its log line, best model or checkpoint: a full disk, a
 * folder made read-only) said only "ENOSPC: no space left on device, write", not which run, what was kept or that
 * --resume continues it. The checkpoint before this epoch is whole (writeDirAtomic), so --resume starts over
 * from that epoch (or from the start when none was written).
 */
function notSaved(e: unknown, p: Phase<LoopState>, epoch: number): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return e;
  const kept = epoch > 0 ? `its checkpoint keeps epoch ${epoch}` : 'no epoch had been saved yet';
  return new Error(
    `epoch ${epoch + 1} could not be saved in ${path.dirname(p.logFile)} (${writeFailure(e)}); ${kept}: ` +
      'free some space or make the folder writable, then continue the run with --resume',
    { cause: e },
  );
}

/**
 * The end of one epoch once validated: its log.jsonl entry and line, the best model when it is one, early
 * stopping, and the checkpoint. Returns whether the phase stops early. The best model goes first and whole
 * (written aside, then swapped in): a checkpoint naming an epoch as the best is only written once that epoch's
 * model is there, and a stop midway leaves the best model before it, never an empty or half-written folder.
 */
async function endEpoch<S extends LoopState>(
  p: Phase<S>,
  epoch: number,
  v: ValidationSummary,
  run: { loss: number; steps: number; t0: number; trainSeconds: number },
  putBack: (() => void) | undefined,
): Promise<boolean> {
  const { state, schedule } = p;
  const w = words(p.name);
  const entry = {
    epoch: epoch + 1,
    ...(p.name ? { phase: p.name } : {}),
    loss: run.loss,
    val_loss: v.loss,
    val_auc: v.auc,
    val_accuracy: v.acc,
    lr: schedule.lr(state.step - (p.stepsBefore ?? 0) - 1, run.steps),
    seconds: (Date.now() - run.t0) / 1000,
    train_seconds: run.trainSeconds,
  };
  appendRunLog(p.logFile, entry);
  p.log(
    `${p.epochTitle(epoch)}: loss ${entry.loss.toFixed(4)}, val loss ${v.loss.toFixed(4)}, ` +
      `val AUC ${v.auc.toFixed(4)}, val acc ${(v.acc * 100).toFixed(1)}%, ` +
      `${entry.seconds.toFixed(entry.seconds < 10 ? 1 : 0)} s ` +
      `(${((run.trainSeconds / run.steps) * 1000).toFixed(0)} ms/step)`,
  );
  if (schedule.onValidation(v.auc)) p.log('  reducing learning rate');
  let stop = false;
  if (v.auc > state.bestAuc) {
    state.bestAuc = v.auc;
    state.bestEpoch = epoch + 1;
    p.onBest?.(state);
    await writeDirAtomic(p.bestDir, (tmp) => saveLayersModel(p.model, tmp));
  } else if (p.patience > 0 && epoch + 1 - (p.patienceFrom?.(state) ?? state.bestEpoch) >= p.patience) {
    p.log(`${w.stopping}: no better validation AUC for ${plural(p.patience, 'epoch')}`);
    stop = true;
  }
  putBack?.();
  state.epoch = epoch + 1;
  state.schedule = schedule.state();
  state.elapsedSeconds = (Date.now() - p.started) / 1000;
  // Only this phase's stop: an earlier phase's (the transfer head's) does not end the one that follows it.
  const key = p.name ?? 'train';
  if (stop) state.stoppedEarly = key;
  else delete state.stoppedEarly;
  p.onEpochEnd?.(state);
  const average = p.average;
  await saveCheckpoint(p.lastDir, p.model, p.optimizer, state, average && ((dir) => average.save(dir)));
  return stop;
}
