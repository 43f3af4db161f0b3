// Temporary folders a test file makes as its tests go, every one removed after the file's last test.
import * as fs from 'node:fs';
import { after } from 'node:test';
import { tempDir } from './serve-fixtures';

/** A maker of temporary folders (named cxr-PREFIX-...), all removed by an after() hook it adds to the file. */
export function tempDirsRemovedAfter(): (prefix: string) => string {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  return (prefix) => {
    const d = tempDir(prefix);
    dirs.push(d);
    return d;
  };
}
