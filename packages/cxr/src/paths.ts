// Where cxr finds things when the user does not say.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository root (for the shipped model), found from this file's location. */
export function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'models', 'default'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..', '..', '..', '..');
}

/** The shipped model: CXR_MODEL, else models/default in the repository. */
export function defaultModelDir(): string {
  return process.env.CXR_MODEL ?? path.join(repoRoot(), 'models', 'default');
}

/**
 * A command's model folder: the one given (--model), else the shipped one. Where there is none to fall back on
 * (cxr installed as an npm package, which carries no model, and CXR_MODEL unset), the error says what to give
 * rather than "no such folder" for a path the user never typed.
 */
export function modelDirOrDefault(given: string | undefined): string {
  if (given !== undefined) return given;
  const dir = defaultModelDir();
  if (process.env.CXR_MODEL === undefined && !fs.existsSync(dir)) {
    throw new Error(
      `no model given, and there is no shipped model at ${dir} (an installed cxr package carries none): ` +
        'give the model folder with --model DIR, or set CXR_MODEL',
    );
  }
  return dir;
}

/**
 * The part of `p` that is a file where a folder should be (`film.dcm` of `film.dcm/x`), as `p` writes it; null
 * where no part is. The system says only ENOTDIR ("not a directory") of such a path, naming neither part.
 */
export function fileInPath(p: string): string | null {
  const parents: string[] = [];
  for (let d = path.dirname(p); d !== path.dirname(d); d = path.dirname(d)) parents.unshift(d);
  for (const d of parents) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(d, { throwIfNoEntry: false });
    } catch {
      return null; // unreadable (no permission, a loop of links): not this question
    }
    if (!st) return null;
    if (!st.isDirectory()) return d;
  }
  return null;
}

/** A path that goes through `file` (fileInPath's answer), in words. */
export const throughFileWords = (file: string) => `a part of the path, ${file}, is a file, not a folder`;

/** `p` is not there: 'no such folder' (or `missing`), or which part of it is a file (see fileInPath). */
export function missingPathWords(p: string, missing = 'no such folder'): string {
  const file = fileInPath(p);
  return file ? throughFileWords(file) : missing;
}

/** fs.statSync, undefined where nothing is there: no entry, or a path through a file (ENOTDIR: see fileInPath). */
export function statIfThere(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p, { throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}
