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
