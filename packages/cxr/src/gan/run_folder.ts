// What a `cxr gan train --out` folder holds, checked before anything is written there: a used folder is
// refused without --resume (a second run would train over the first GAN, leave its old sample grids beside
// the new ones, or write a GAN into a classifier's run folder), and --resume continues the saved config only.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCheckedJson } from '../models/io';
import { type GanState, readGanState } from './checkpoint';
import { z } from 'zod';
import { GanConfig, type GanConfigInput } from './config';

/** Files only a GAN folder has: its exported generator, gan.json, or a checkpoint with a discriminator. */
const GAN_MARKS = ['gan.json', 'generator', path.join('checkpoints', 'last', 'discriminator')];
/** Files only a classifier's run folder (cxr train, an ensemble) has. */
const CLASSIFIER_MARKS = ['cxr.json', 'recipe.json', 'model.json', path.join('checkpoints', 'data.json')];
/** What a GAN run stopped before its first checkpoint leaves: training again over it loses nothing. */
const EARLY_GAN_FILES = ['config.json', 'log.jsonl', 'checkpoints', 'samples'];

const has = (dir: string, marks: readonly string[]) => marks.some((m) => fs.existsSync(path.join(dir, m)));

/** Whether dir was written by `cxr gan train` (cxr train refuses it as its --out). */
export const isGanFolder = (dir: string): boolean => has(dir, GAN_MARKS);

export const configPath = (out: string) => path.join(out, 'config.json');
export const checkpointPath = (out: string) => path.join(out, 'checkpoints', 'last');

const nEpochs = (n: number) => `${n} epoch${n === 1 ? '' : 's'}`;

/** The options of `cxr gan train` by config field, to name them in a refusal as the user typed them. */
const FLAGS: Partial<Record<keyof GanConfig, string>> = {
  size: '--size',
  zDim: '--z-dim',
  gWidth: '--g-width',
  dWidth: '--d-width',
  epochs: '--epochs',
  batchSize: '--batch-size',
  lr: '--lr',
  loss: '--loss',
  balance: '--balance',
  seed: '--seed',
  valFraction: '--val-fraction',
  valSplit: '--val-split',
  limitPerClass: '--limit-per-class',
};

function readSavedConfig(out: string): GanConfig | null {
  const remedy = `train the GAN again into a new --out folder`;
  return readCheckedJson(configPath(out), GanConfig, 'the settings of this GAN run', remedy);
}

/**
 * Refuses an --out that cannot take this run: without --resume any folder holding a GAN or a classifier run or
 * other files; with --resume one that holds no GAN to continue. Nothing is written here.
 */
export function checkGanOut(out: string, resume: boolean): void {
  if (has(out, CLASSIFIER_MARKS))
    throw new Error(`${out} is a classifier run folder (cxr train), not a GAN: choose a new --out folder`);
  const state = readGanState(checkpointPath(out));
  if (resume) {
    if (!state && !fs.existsSync(configPath(out))) {
      const why = fs.existsSync(out) ? 'no GAN checkpoint in it' : 'no such folder';
      throw new Error(
        `${out}: there is nothing to resume (${why}); start a new GAN with the same command without --resume`,
      );
    }
    return;
  }
  if (state || fs.existsSync(path.join(out, 'gan.json'))) {
    const saved = fs.existsSync(configPath(out)) ? readSavedConfig(out) : null;
    const done = state?.epoch ?? 0;
    if (saved && done < saved.epochs)
      throw new Error(
        `${out} already holds an unfinished GAN run (${done} of ${saved.epochs} epochs): continue it with ` +
          '--resume, or choose a new --out folder',
      );
    throw new Error(
      `${out} already holds a trained GAN, which training would overwrite: choose a new --out folder ` +
        `(or train this one further with --resume --epochs N, N more than ${saved?.epochs ?? done})`,
    );
  }
  // A folder of other things (a data folder given as --out by mistake): the GAN's files would be mixed in.
  const entries = fs.existsSync(out) ? fs.readdirSync(out).filter((e) => !e.startsWith('.')) : [];
  const other = entries.filter((e) => !EARLY_GAN_FILES.includes(e));
  if (other.length > 0) {
    const shown = other.slice(0, 3).join(', ') + (other.length > 3 ? `, ... (${other.length})` : '');
    throw new Error(`${out} holds other files (${shown}), not a GAN run: choose a new or empty --out folder`);
  }
}

/**
 * --resume continues the settings the run started with (its config.json); `given` (the options on the command
 * line) must agree with them, except --epochs, which may extend the run but not undo epochs already trained.
 * Returns the config to train with and the checkpoint's state (null: stopped before its first epoch ended, so
 * training starts again with the saved config).
 */
export function resumedGanConfig(out: string, given: GanConfigInput): { config: GanConfig; state: GanState | null } {
  const saved = readSavedConfig(out);
  if (!saved)
    throw new Error(
      `${out}: its GAN checkpoint has no config.json beside it, so the networks cannot be rebuilt to resume: ` +
        'train the GAN again into a new --out folder',
    );
  const state = readGanState(checkpointPath(out));
  const asked = given as Partial<Record<keyof GanConfig, unknown>>;
  const differ = (Object.keys(asked) as Array<keyof GanConfig>).filter(
    (k) => k !== 'epochs' && asked[k] !== undefined && JSON.stringify(asked[k]) !== JSON.stringify(saved[k]),
  );
  if (differ.length > 0)
    throw new Error(
      `--resume continues the GAN in ${out} with the config it started with, and these options differ from the ` +
        `saved config: ${differ.map((k) => `${FLAGS[k] ?? k} ${asked[k]} (saved: ${saved[k]})`).join(', ')}; ` +
        'drop them or give the saved values to resume, or train into a new --out folder',
    );
  const done = state?.epoch ?? 0;
  const epochs = given.epochs ?? saved.epochs;
  if (epochs < done)
    throw new Error(
      `--epochs ${epochs}: the GAN in ${out} has already trained ${nEpochs(done)}; give more to train it further`,
    );
  if (epochs === done)
    throw new Error(
      `${out} holds a GAN that finished its ${nEpochs(done)}: there is nothing to resume; ` +
        `--resume --epochs N (N more than ${done}) trains it further`,
    );
  return { config: GanConfig.parse({ ...saved, epochs }), state };
}

/** What checkResumedData reads of gan.json: the record of the data (the rest is checked where it is loaded). */
const SavedData = z.object({
  data: z.object({ root: z.string().optional(), fingerprint: z.string().optional() }).passthrough().optional(),
});

/**
 * --resume continues on the films the GAN started on: another folder (or the same folder with other films) would
 * go on training it on images whose split gan.json no longer records, and `cxr train --gan-model`'s check that
 * the GAN never saw its validation patients compares that record. gan.json, written after every epoch, holds the
 * split fingerprint the checkpoint trained on; one stopped before it (an older run) is resumed without the check.
 */
export function checkResumedData(out: string, data: string, fingerprint: string, log: (l: string) => void): void {
  const file = path.join(out, 'gan.json');
  const meta = readCheckedJson(
    file,
    SavedData,
    'the record of this GAN',
    `train the GAN again into a new --out folder`,
  );
  const started = meta?.data;
  if (started?.fingerprint === undefined) {
    log(`note: ${out} does not record the data it started on: resuming without checking it`);
    return;
  }
  if (started.fingerprint === fingerprint) return;
  const root = started.root ?? 'another folder';
  const sameFolder = started.root !== undefined && path.resolve(started.root) === path.resolve(data);
  throw new Error(
    sameFolder
      ? `the films in ${data} changed since this GAN started (split fingerprint differs): put the folder back ` +
          'as it was to resume, or train a GAN on it as it is now into a new --out folder'
      : `the data in ${data} is not the data this GAN started on (split fingerprint differs): it trained on ` +
          `${root}; resume with --data ${root}, or train a GAN on other data into a new --out folder`,
  );
}
