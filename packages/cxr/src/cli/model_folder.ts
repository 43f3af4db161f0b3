// A --model folder that holds a training run stopped before it wrote its model (checkpoints and a recipe, no
// cxr.json yet): said as such, with the `cxr train --resume` command that finishes it. Loading it said only
// "no cxr.json (not a cxr model folder)", which sent the user looking for another folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isGanFolder } from '../gan/run_folder';
import { readRunData, readState } from '../train/checkpoint';
import { shellWord } from './interrupt';

/** What a damaged record says is no reason to hide the advice: the command then names what it could not read. */
function tryRead<T>(read: () => T): T | null {
  try {
    return read();
  } catch {
    return null;
  }
}

/**
 * The error for a model folder that is a run not finished yet (a classifier's or a GAN's), or null where `dir`
 * holds a model (cxr.json) or no run at all (the model loader then says what it is).
 */
export function unfinishedRunError(dir: string, option = '--model'): Error | null {
  if (fs.existsSync(path.join(dir, 'cxr.json'))) return null;
  const last = path.join(dir, 'checkpoints', 'last');
  if (!fs.existsSync(last) && !fs.existsSync(path.join(dir, 'recipe.json'))) return null;
  if (isGanFolder(dir))
    return new Error(`${option} ${dir} is a GAN's run folder (cxr gan train), not a classifier model`);
  const epoch = tryRead(() => readState(last))?.epoch;
  const stopped = epoch === undefined ? 'before its first epoch ended' : `after epoch ${epoch}`;
  // The data it started on, as the checkpoint records it (train/run.ts writeRunData): --resume refuses other data.
  const data = tryRead(() => readRunData(dir))?.root;
  return new Error(
    `${option} ${dir} holds a training run that was stopped ${stopped}, before it wrote its model ` +
      `(cxr.json is written when training ends): finish it with\n` +
      `  cxr train --data ${data ? shellWord(data) : 'DATA'} --out ${shellWord(path.resolve(dir))} --resume\n` +
      `or give ${option} a finished model folder`,
  );
}

/** Throws unfinishedRunError's error where there is one: called before the engine or the model loads. */
export function checkNotUnfinishedRun(dir: string, option = '--model'): void {
  const e = unfinishedRunError(dir, option);
  if (e) throw e;
}
