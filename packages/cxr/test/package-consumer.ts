// A TypeScript program outside the package, compiled by tsc against it as an installed one would be (its
// node_modules/@cxr/app): for the tests of what the package's declarations let a program name.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './serve-fixtures';
import { type Ended, spawnAsync } from './spawn-async';

const REPO = path.resolve(__dirname, '..', '..', '..', '..');
const TSC = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');

/** How a strict program of a user's is checked against the package (its own dependencies' types not checked). */
export const STRICT_NODE16 = ['--noEmit', '--strict', '--skipLibCheck', '--module', 'node16', '--target', 'es2022'];

/** tsc ARGS on `file` (holding `source`) in a temp folder of its own, removed after; tsc's answer. */
export async function compileConsumer(
  prefix: string,
  file: string,
  source: string,
  args: string[],
  timeout = 120_000,
): Promise<Ended> {
  const dir = tempDir(prefix);
  try {
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    fs.writeFileSync(path.join(dir, file), source);
    return await spawnAsync(process.execPath, [TSC, ...args, file], { cwd: dir, encoding: 'utf8', timeout });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
