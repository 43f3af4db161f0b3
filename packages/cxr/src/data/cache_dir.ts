// Where cxr's caches live (decoded films, backbone features), and what a command does when the place
// cannot be written: it says so once and goes on without the cache.
import * as fs from 'node:fs';
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

/** Cache roots already told about their older folders in this process. */
const toldOlder = new Set<string>();

/**
 * The `images-v<k>` folders under `root` that an older cxr wrote (k < version): this cxr never reads them, as their
 * pixels may differ from what it decodes. Says once per process and root where they are, so the space can be
 * freed; they are not deleted here, as another (older) checkout on this machine may still use them.
 */
export function tellOlderImageCaches(root: string, version: number, warn: (l: string) => void): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  const older = names
    .filter((n) => /^images-v\d+$/.test(n) && Number(n.slice('images-v'.length)) < version)
    .map((n) => path.join(root, n))
    .sort();
  if (older.length > 0 && !toldOlder.has(root)) {
    toldOlder.add(root);
    warn(
      `note: ${older.join(', ')} ${older.length === 1 ? 'was' : 'were'} written by an older cxr and ` +
        `${older.length === 1 ? 'is' : 'are'} no longer read (films are now decoded as images-v${version}); ` +
        'delete to free the space unless an older cxr on this machine still uses them',
    );
  }
  return older;
}
