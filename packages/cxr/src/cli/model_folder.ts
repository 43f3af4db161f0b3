// A --model folder that holds a training run stopped before it wrote its model (checkpoints and a recipe, no
// cxr.json yet): said as such, with the `cxr train --resume` command that finishes it. Loading it said only
// "no cxr.json (not a cxr model folder)", which sent the user looking for another folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isGanFolder } from '../gan/run_folder';
import { readRunData, readState } from '../train/checkpoint';
import { OptionError } from './args';
import { shellWord } from './interrupt';
import { missingPathWords, modelDirOrDefault, statIfThere } from '../paths';

/** What a damaged record says is no reason to hide the advice: the command then names what it could not read. */
function tryRead<T>(read: () => T): T | null {
  try {
    return read();
  } catch {
    return null;
  }
}

/** A classifier's training run stopped before it wrote its model: how far it got, and the command that finishes it. */
export interface UnfinishedRun {
  /** 'after epoch N', or 'before its first epoch ended'. */
  stopped: string;
  /** `cxr train --data ROOT --out RUN --resume`, ROOT as the checkpoint records it (else the word DATA). */
  resume: string;
}

/** Whether `dir` holds a run stopped before it wrote cxr.json (checkpoints or a recipe, no model yet). */
function isUnfinishedRun(dir: string): boolean {
  if (fs.existsSync(path.join(dir, 'cxr.json'))) return false;
  return fs.existsSync(path.join(dir, 'checkpoints', 'last')) || fs.existsSync(path.join(dir, 'recipe.json'));
}

/** The classifier's run `dir` holds, unfinished; null for a model (cxr.json), a GAN's run or no run at all. */
export function unfinishedRun(dir: string): UnfinishedRun | null {
  if (!isUnfinishedRun(dir) || isGanFolder(dir)) return null;
  const epoch = tryRead(() => readState(path.join(dir, 'checkpoints', 'last')))?.epoch;
  // The data it started on, as the checkpoint records it (train/run.ts writeRunData): --resume refuses other data.
  const data = tryRead(() => readRunData(dir))?.root;
  return {
    stopped: epoch === undefined ? 'before its first epoch ended' : `after epoch ${epoch}`,
    resume: `cxr train --data ${data ? shellWord(data) : 'DATA'} --out ${shellWord(path.resolve(dir))} --resume`,
  };
}

/** `subject` (the folder, named as the command was given it) said to hold `run`, with the command finishing it. */
export function unfinishedRunWords(subject: string, run: UnfinishedRun): string {
  return (
    `${subject} holds a training run that was stopped ${run.stopped}, before it wrote its model ` +
    `(cxr.json is written when training ends): finish it with\n  ${run.resume}`
  );
}

/**
 * The error for a model folder that is a run not finished yet (a classifier's or a GAN's), or null where `dir`
 * holds a model (cxr.json) or no run at all (the model loader then says what it is).
 */
export function unfinishedRunError(dir: string, option = '--model'): Error | null {
  const run = unfinishedRun(dir);
  if (run) {
    return new OptionError(`${unfinishedRunWords(`${option} ${dir}`, run)}\nor give ${option} a finished model folder`);
  }
  if (isUnfinishedRun(dir) && isGanFolder(dir))
    return new OptionError(`${option} ${dir} is a GAN's run folder (cxr gan train), not a classifier model`);
  const models = modelSubfolders(dir);
  if (models.length)
    return new OptionError(
      `${option} ${dir} holds model folders, not a model (an experiments folder?): give one of them, ` +
        `e.g. ${option} ${path.join(dir, models[0])}`,
    );
  return null;
}

/**
 * The sub-folders of `dir` that hold a model, where `dir` holds none itself: `cxr experiments --out` folders,
 * whose runs are their sub-folders, were given as `--model` and answered only "no cxr.json".
 */
function modelSubfolders(dir: string): string[] {
  if (fs.existsSync(path.join(dir, 'cxr.json'))) return [];
  const entries = tryRead(() => fs.readdirSync(dir, { withFileTypes: true })) ?? [];
  return entries
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(dir, e.name, 'cxr.json')))
    .map((e) => e.name)
    .sort();
}

/** Throws unfinishedRunError's error where there is one: called before the engine or the model loads. */
export function checkNotUnfinishedRun(dir: string, option = '--model'): void {
  const e = unfinishedRunError(dir, option);
  if (e) throw e;
}

/**
 * The error for a model folder the user named that is no folder: missing (said with the folder it was looked for
 * in, for a relative path), a file, or a path through a file; null where it is a folder. Every command that takes
 * a model folder says it by the option that named it: the loader's own "runs/x: no such folder" named none, where
 * a command also has --data, --out or a second model.
 */
export function modelFolderError(dir: string, option: string): Error | null {
  const st = statIfThere(dir);
  if (st?.isDirectory()) return null;
  if (st) return new OptionError(`${option} ${dir}: is a file, not a folder (give the model folder holding cxr.json)`);
  const where = path.isAbsolute(dir) ? '' : ` (${path.resolve(dir)})`;
  const why = missingPathWords(dir, `no such folder${where}`);
  return new OptionError(
    `${option} ${dir}: ${why}: check the path; give the folder holding cxr.json (cxr train --out writes one)`,
  );
}

/**
 * The model folder a command's `--model` names (the shipped one when not given), checked before the engine
 * starts or the model loads: a folder there (modelFolderError), and no run left unfinished (checkNotUnfinishedRun).
 * `option` is how the command names it (`--models` of `cxr compare`, `--members` of `cxr ensemble`).
 */
export function checkModelOption(model: string | undefined, option = '--model'): string {
  const dir = modelDirOrDefault(model);
  // Not given: the shipped folder, or CXR_MODEL's, which the user set and may have mistyped.
  const named = model !== undefined ? option : process.env.CXR_MODEL !== undefined ? 'CXR_MODEL' : 'the model folder';
  const missing = modelFolderError(dir, named);
  if (missing) throw missing;
  checkNotUnfinishedRun(dir, model !== undefined ? option : 'the model folder');
  return dir;
}
