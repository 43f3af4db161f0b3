// Finds the images of a Kaggle-style chest_xray folder. Two layouts are accepted:
//   ROOT/{train,val,test}/{NORMAL,PNEUMONIA}/*   (the Kaggle download)
//   ROOT/{NORMAL,PNEUMONIA}/*                     (one split on its own)
// Every visible regular file is listed, whatever its extension: deciding what is an image is
// the decoder's job (by content), so that a mislabelled or corrupt file is reported by name
// instead of silently vanishing here.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parsePatient } from './patients';

export const CLASS_NAMES = ['NORMAL', 'PNEUMONIA'] as const;
/** 0 = NORMAL, 1 = PNEUMONIA (the positive class). */
export type Label = 0 | 1;

export const SPLIT_NAMES = ['train', 'val', 'test'] as const;
/** 'all' is used for a folder that holds NORMAL/ and PNEUMONIA/ directly and is not named like a split. */
export type SplitName = (typeof SPLIT_NAMES)[number] | 'all';

export interface ImageRecord {
  /** Absolute path. */
  path: string;
  split: SplitName;
  label: Label;
  patient: string;
}

export class DatasetLayoutError extends Error {
  constructor(
    readonly root: string,
    message: string,
  ) {
    super(message);
    this.name = 'DatasetLayoutError';
  }
}

/** Lists every image of ROOT in a stable order (split, label, file name). */
export async function scanDataset(root: string): Promise<ImageRecord[]> {
  const abs = path.resolve(root);
  const top = await readDirOrThrow(abs);
  const splitDirs = SPLIT_NAMES.flatMap((s) => {
    const d = findChild(top, s);
    return d ? [{ split: s as SplitName, dir: path.join(abs, d) }] : [];
  });

  let groups: Array<{ split: SplitName; dir: string }>;
  if (splitDirs.length > 0) {
    groups = splitDirs;
  } else if (findChild(top, 'NORMAL') || findChild(top, 'PNEUMONIA')) {
    const base = path.basename(abs).toLowerCase();
    const split = (SPLIT_NAMES as readonly string[]).includes(base) ? (base as SplitName) : 'all';
    groups = [{ split, dir: abs }];
  } else {
    throw new DatasetLayoutError(
      abs,
      `${abs}: no chest_xray layout found: ` +
        'expected train/, val/ or test/ folders, or NORMAL/ and PNEUMONIA/ folders directly inside',
    );
  }

  const records: ImageRecord[] = [];
  for (const { split, dir } of groups) {
    const entries = await readDirOrThrow(dir);
    for (const [label, cls] of CLASS_NAMES.entries()) {
      const classDir = findChild(entries, cls);
      if (!classDir) continue;
      const files = await listFiles(path.join(dir, classDir));
      for (const file of files) {
        records.push({ path: file, split, label: label as Label, patient: parsePatient(file).id });
      }
    }
  }
  return records;
}

/** Directory names are matched case-insensitively: copies of the data set differ in case. */
function findChild(entries: import('node:fs').Dirent[], name: string): string | undefined {
  return entries.find((e) => isDirLike(e) && e.name.toLowerCase() === name.toLowerCase())?.name;
}

function isDirLike(e: import('node:fs').Dirent): boolean {
  return e.isDirectory() || e.isSymbolicLink();
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readDirOrThrow(dir);
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const full = path.join(dir, e.name);
    // Symlinks are followed so a folder of links into a shared copy works.
    const isFile = e.isFile() || (e.isSymbolicLink() && (await fs.stat(full).catch(() => null))?.isFile());
    if (isFile) out.push(full);
  }
  return out.sort(compareNames);
}

async function readDirOrThrow(dir: string): Promise<import('node:fs').Dirent[]> {
  try {
    return (await fs.readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DatasetLayoutError(dir, `${dir}: cannot read folder (${code ?? String(err)})`);
  }
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
