// Where cxr's caches live (decoded films, backbone features), and what a command does when the place
// cannot be written: it says so once and goes on without the cache.
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFailure } from '../make_dirs';

export function defaultCacheDir(): string {
  const env = process.env.CXR_CACHE;
  return env && env.length > 0 ? path.resolve(env) : path.join(os.homedir(), '.cache', 'cxr');
}

/** Cache roots already warned about in this process: one warning, not one per split. */
const warnedUnwritable = new Set<string>();

/** Says once per process and cache root that `what` cannot be written there, and why; the caller goes on without. */
export function warnUnwritableCache(
  what: string,
  root: string,
  err: unknown,
  warn: (l: string) => void,
  keeps = 'decoded films',
) {
  if (warnedUnwritable.has(root)) return;
  warnedUnwritable.add(root);
  warn(
    `warning: ${what} ${root} is not writable (${writeFailure(err)}); running without it ` +
      `(set CXR_CACHE to a writable folder to keep ${keeps} between runs)`,
  );
}
