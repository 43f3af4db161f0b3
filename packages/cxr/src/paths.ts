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
