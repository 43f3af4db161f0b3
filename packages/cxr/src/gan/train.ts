// `cxr gan train`: the class-conditional GAN on the training part of the classifier's patient
// split (validation patients are never shown to it), with a JSON-lines loss log, a sample grid
// per epoch from fixed noise, per-epoch checkpoints (--resume), the exported generator after
// every epoch, and the memorisation check at the end.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { SingleBar } from 'cli-progress';
import { epochOrder } from '../data/balance';
import { count, gatherPixels } from '../data/images';
import { loadTrainVal } from '../data/dataset_images';
import { appendRunLog, runLogPath, startRunLog } from '../report/run_log';
import { GanState, restoreGanCheckpoint, saveGanCheckpoint } from './checkpoint';
import { checkGanOut, checkpointPath, checkResumedData, configPath, resumedGanConfig } from './run_folder';
import { CLASS_NAMES, GanConfig, GanConfigInput } from './config';
import { exportGenerator, GAN_FORMAT, GanMeta } from './generator_io';
import { tilesOf, writeGrid } from './grid';
import { recalibrateBatchNorm } from './bn_stats';
import { memorisationCheck, MemorisationSummary } from './memorisation';
import { buildDiscriminator, buildGenerator } from './models';
import { gaussian, oneHot, toGanInput, toPixels } from './noise';
import { ganStep, makeNets, Nets } from './step';
import { makeDirs } from '../make_dirs';
import { recoverReplaced } from '../models/dir_swap';

export interface GanTrainOptions {
  data: string;
  out: string;
  config: GanConfigInput;
  resume?: boolean;
  progress?: boolean;
  /** Samples per class for the memorisation check; 0 skips it. */
  checkPerClass?: number;
  log?: (line: string) => void;
}

export interface GanTrainResult {
  config: GanConfig;
  epochs: number;
  seconds: number;
  grids: string[];
  memorisation: MemorisationSummary | null;
}

/** The grid: this many columns, and this many rows per class (same noise in both classes). */
export const GRID_COLS = 8;
export const GRID_ROWS_PER_CLASS = 2;

export function sampleGrid(nets: Pick<Nets, 'g'>, c: GanConfig): Uint8Array[][] {
  const n = GRID_COLS * GRID_ROWS_PER_CLASS;
  const z = gaussian(n, c.zDim, c.seed, 'grid');
  const rows: Uint8Array[][] = [];
  for (const cls of [0, 1]) {
    const images = tf.tidy(
      () => nets.g.predict([tf.tensor2d(z, [n, c.zDim]), oneHot(Array(n).fill(cls))]) as tf.Tensor,
    );
    const tiles = tilesOf(toPixels(images), n, c.size);
    images.dispose();
    for (let r = 0; r < GRID_ROWS_PER_CLASS; r++) rows.push(tiles.slice(r * GRID_COLS, (r + 1) * GRID_COLS));
  }
  return rows;
}

export async function trainGan(o: GanTrainOptions): Promise<GanTrainResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const progress = o.progress ?? process.stderr.isTTY === true;
  // A kill between the two renames that swap in a checkpoint leaves checkpoints/last.old-HOST-PID and no
  // checkpoints/last: put it back first (as cxr train's recoverCheckpoints does), or --resume would find no
  // checkpoint and train again from epoch 0, and the next checkpoint would replace the recovered one.
  recoverReplaced(checkpointPath(o.out));
  // Checked before anything is written: a refused command leaves --out as it was.
  checkGanOut(o.out, o.resume === true);
  const resumed = o.resume === true ? resumedGanConfig(o.out, o.config) : null;
  // A resumed run keeps the settings it started with; only the epoch count may grow.
  const c = resumed?.config ?? GanConfig.parse(o.config);
  const resuming = resumed?.state != null;
  const ckpt = checkpointPath(o.out);
  const logFile = runLogPath(o.out);

  // The root as an absolute path: gan.json's record of it (and the split check of cxr train --gan-model that
  // compares it) must not depend on the directory the command ran in.
  const { train, val, info } = await loadTrainVal(path.resolve(o.data), {
    size: c.size,
    progress,
    warn: log,
    valFraction: c.valFraction,
    valSplit: c.valSplit,
    seed: c.seed,
    limitPerClass: c.limitPerClass,
  });
  const counts = count(train);
  if (counts.normal === 0 || counts.pneumonia === 0) throw new Error('the GAN needs training images of both classes');
  if (resuming) checkResumedData(o.out, o.data, info.fingerprint, log);
  if (o.resume === true && !resuming)
    log(`note: ${o.out} was stopped before its first checkpoint: training starts again with its saved config`);
  // Only now, with the data and options checked: a refused command leaves --out as it was, so that no config.json
  // of a refused command can come back with --resume.
  makeDirs(o.out);
  fs.writeFileSync(configPath(o.out), JSON.stringify(c, null, 2) + '\n');

  const nets = makeNets(buildGenerator(c), buildDiscriminator(c), c);
  let state: GanState = { epoch: 0, step: 0, elapsedSeconds: 0 };
  if (resuming) {
    state = await restoreGanCheckpoint(ckpt, nets);
    log(`resuming after epoch ${state.epoch}`);
  }
  startRunLog(logFile, resuming ? state.epoch : null);
  log(
    `GAN at ${c.size}px on ${counts.n} training images (${counts.normal} normal, ${counts.pneumonia} pneumonia; ` +
      `${val.labels.length} validation images held out); ` +
      `${c.epochs} epoch${c.epochs === 1 ? '' : 's'}, batch ${c.batchSize}, ` +
      `G width ${c.gWidth} (${nets.g.countParams()} weights), ` +
      `D width ${c.dWidth} (${nets.d.countParams()} weights), ${c.loss} loss`,
  );

  const dataInfo = { ...info, train: counts, validation: count(val) };
  const grids: string[] = [];
  const started = Date.now() - state.elapsedSeconds * 1000;
  for (let epoch = state.epoch; epoch < c.epochs; epoch++) {
    const t0 = Date.now();
    const order = epochOrder(train.labels, c.balance, c.seed, epoch);
    // Full batches only: batch norm statistics of a 3-image batch would be noise.
    const steps = Math.max(1, Math.floor(order.length / c.batchSize));
    const bar = progress
      ? new SingleBar({
          format: `GAN epoch ${epoch + 1}/${c.epochs} [{bar}] {value}/{total} | D {d} G {g} | eta {eta_formatted}`,
          stream: process.stderr,
          hideCursor: true,
        })
      : null;
    bar?.start(steps, 0, { d: '-', g: '-' });
    const sum = { dLoss: 0, gLoss: 0, dReal: 0, dFake: 0 };
    for (let b = 0; b < steps; b++) {
      const idx = order.slice(b * c.batchSize, (b + 1) * c.batchSize);
      const real = toGanInput(gatherPixels(train, idx), idx.length, c.size);
      const labels = oneHot(idx.map((i) => train.labels[i]));
      const z1 = tf.tensor2d(gaussian(idx.length, c.zDim, c.seed, 'step', state.step, 'd'), [idx.length, c.zDim]);
      const z2 = tf.tensor2d(gaussian(idx.length, c.zDim, c.seed, 'step', state.step, 'g'), [idx.length, c.zDim]);
      const s = ganStep(nets, real, labels, z1, z2, c);
      tf.dispose([real, labels, z1, z2]);
      if (!Number.isFinite(s.dLoss) || !Number.isFinite(s.gLoss)) {
        throw new Error(
          `GAN training diverged at epoch ${epoch + 1}, step ${b + 1}: D loss ${s.dLoss}, G loss ${s.gLoss}`,
        );
      }
      for (const k of Object.keys(sum) as Array<keyof typeof sum>) sum[k] += s[k];
      state.step++;
      if (state.step % c.logEvery === 0) {
        appendRunLog(logFile, {
          kind: 'step',
          epoch: epoch + 1,
          step: state.step,
          d_loss: s.dLoss,
          g_loss: s.gLoss,
          d_real: s.dReal,
          d_fake: s.dFake,
        });
      }
      bar?.update(b + 1, { d: (sum.dLoss / (b + 1)).toFixed(3), g: (sum.gLoss / (b + 1)).toFixed(3) });
      // Let signals and I/O through between steps.
      if (b % 8 === 7) await new Promise((r) => setImmediate(r));
    }
    bar?.stop();
    recalibrateBatchNorm(nets.g, c.zDim, c.seed);
    const grid = path.join(o.out, 'samples', `epoch-${String(epoch + 1).padStart(3, '0')}.png`);
    await writeGrid(grid, sampleGrid(nets, c), c.size);
    grids.push(grid);
    const entry = {
      kind: 'epoch',
      epoch: epoch + 1,
      step: state.step,
      d_loss: sum.dLoss / steps,
      g_loss: sum.gLoss / steps,
      d_real: sum.dReal / steps,
      d_fake: sum.dFake / steps,
      seconds: (Date.now() - t0) / 1000,
      ms_per_step: (Date.now() - t0) / steps,
    };
    appendRunLog(logFile, entry);
    log(
      `GAN epoch ${epoch + 1}/${c.epochs}: D loss ${entry.d_loss.toFixed(3)}, G loss ${entry.g_loss.toFixed(3)}, ` +
        `D(real) ${entry.d_real.toFixed(2)}, D(fake) ${entry.d_fake.toFixed(2)}, ` +
        `${entry.seconds.toFixed(0)} s (${entry.ms_per_step.toFixed(0)} ms/step)`,
    );
    state.epoch = epoch + 1;
    state.elapsedSeconds = (Date.now() - started) / 1000;
    await saveGanCheckpoint(ckpt, nets, state);
    const meta: GanMeta = {
      format: GAN_FORMAT,
      size: c.size,
      zDim: c.zDim,
      classNames: [CLASS_NAMES[0], CLASS_NAMES[1]],
      epochs: state.epoch,
      config: c,
      data: dataInfo,
      createdAt: new Date().toISOString(),
    };
    await exportGenerator(o.out, nets.g, meta);
  }

  let memorisation: MemorisationSummary | null = null;
  if ((o.checkPerClass ?? 16) > 0) {
    memorisation = await memorisationCheck(nets.g, c.zDim, train, val, path.join(o.out, 'memorisation'), {
      perClass: o.checkPerClass ?? 16,
      seed: c.seed,
    });
    log(
      `memorisation check: ${memorisation.verdict} (median distance to the nearest training image: samples ` +
        `${memorisation.samples.median.toFixed(1)}, ` +
        `validation images ${memorisation.valToTrain.median.toFixed(1)} grey levels); ` +
        `${memorisation.files.markdown}`,
    );
  }
  nets.g.dispose();
  nets.d.dispose();
  nets.optG.dispose();
  nets.optD.dispose();
  return { config: c, epochs: state.epoch, seconds: state.elapsedSeconds, grids, memorisation };
}
