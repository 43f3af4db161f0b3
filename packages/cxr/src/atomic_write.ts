// Writing a file whole or not at all (written beside its place, then renamed over it). A kill or a full
// disk mid-write leaves the old file as it was, never a cut one that the next reader (a --resume) cannot parse.
// The temporary name starts with a dot: a folder check that ignores hidden files (an unfinished run's,
// train/run.ts) is not misled by one a kill left behind.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Puts `data` in `file` in one rename; on failure removes what it wrote and throws the file system's error. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeFileSync(fd, data);
      // On the disk before the rename: after a power cut a file system may keep the rename but not yet the data
      // (an empty file in place of the old one). The files written here are written seldom: the wait is short.
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    // The write's error is the one to report: a folder that refused the file may refuse its removal too.
    try {
      fs.rmSync(tmp, { force: true });
    } catch {}
    throw e;
  }
}
