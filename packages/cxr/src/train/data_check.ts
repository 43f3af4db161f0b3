// The training data folder checked before a run writes anything (train/run.ts), from its file list alone.
// Its films and the patient split the recipe would train on; or, where the folder is no training folder, the
// layout training needs.
import * as path from 'node:path';
import { filesFingerprint, limitedSplit, splitOf } from '../data/dataset_images';
import { CLASS_NAMES, type ImageRecord, scanDataset } from '../data/dataset';
import type { RunData } from './checkpoint';
import type { Recipe } from './recipe';

/**
 * The patient split the recipe trains on, from the file list alone (nothing decoded): both sides must hold
 * both classes, or the run would train every epoch and only then fail to choose its operating points.
 * Its fingerprint is data/dataset_images.ts's filesFingerprint, which differs from a loaded split's only
 * where a file reads but does not decode.
 *
 * Training reads JPEG and PNG only (a DICOM file in a class folder is skipped by the cache, with a warning),
 * while `cxr evaluate` reads DICOM too. Kept so on purpose: a model's recorded split (cxr.json data), and with
 * it calibration, the OOD fit and bn-reference.json (loadRecordedSplit), is rebuilt from the cache's decode;
 * reading DICOM here would change which films the split of every folder holding DICOM files has, so those
 * models' splits would no longer reproduce. And a DICOM film reaches the model through its VOI LUT, not as the
 * data set's exported JPEGs were made: adding such films to training is a choice about data, not a reader fix.
 */
export async function checkData(
  root: string,
  recipe: Recipe,
  warn: (line: string) => void,
): Promise<{ record: Omit<RunData, 'root'>; records: ImageRecord[]; valPatients: Set<string> }> {
  const all = await trainRecords(root, warn);
  const split = limitedSplit(all, splitOf(recipe));
  const lacking = (rs: readonly ImageRecord[]) => CLASS_NAMES.filter((_, label) => !rs.some((r) => r.label === label));
  if (lacking(all).length > 0)
    throw new Error(
      `${root}: the training folder has no ${lacking(all).join(' or ')} images; training needs both classes`,
    );
  for (const [side, rs] of [
    ['training', split.train],
    ['validation', split.val],
  ] as const) {
    if (lacking(rs).length > 0)
      throw new Error(
        `${root}: the ${side} side of the patient split (${rs.length} images) has no ${lacking(rs).join(' or ')} ` +
          'images; training and its operating points need both classes on both sides: use more images per class ' +
          '(--limit-per-class), another share of validation patients (--val-fraction) or split seed (--split-seed)',
      );
  }
  const fingerprint = await filesFingerprint(split.train, split.val);
  return {
    record: { fingerprint, train: split.train.length, validation: split.val.length },
    records: all,
    valPatients: new Set(split.val.map((r) => r.patient)),
  };
}

const NEEDS_TRAIN = 'cxr train needs ROOT/train/NORMAL and ROOT/train/PNEUMONIA (validation is carved out of train)';

/**
 * The films of ROOT/train (as data/dataset_images.ts's splitRecords(root, 'train') reads them), or an error that
 * says which layout training needs and what the folder holds instead: a folder of NORMAL/ and PNEUMONIA/ serves
 * `cxr evaluate` but is no training folder, and "split 'train' has no images (found: all)" did not say so.
 */
async function trainRecords(root: string, warn: (line: string) => void): Promise<ImageRecord[]> {
  const all = await scanDataset(root, { warn });
  // The folders that hold the films: ROOT/train, ROOT itself (class folders directly inside), or its val/ and test/.
  const abs = path.resolve(root);
  const holder = (r: ImageRecord) => path.dirname(path.dirname(r.path));
  // A folder named train holding NORMAL/ and PNEUMONIA/ is scanned as split 'train' (data/dataset.ts), but it is
  // no training root: the model would record it as its root, and `cxr evaluate --split validation` needs the root
  // with train/ inside to rebuild the validation split, so it would refuse the very folder the model trained on.
  const train = all.filter((r) => r.split === 'train' && holder(r) !== abs);
  if (train.length > 0) return train;
  if (all.length === 0) throw new Error(`${root}: no images in its class folders: ${NEEDS_TRAIN}`);
  const holders = [...new Set(all.map(holder))];
  if (holders.includes(abs))
    throw new Error(
      `${root} has NORMAL/ and PNEUMONIA/ directly: ${NEEDS_TRAIN}; ` +
        (path.basename(abs).toLowerCase() === 'train'
          ? `it is a train/ folder itself: give the folder above it, --data ${path.dirname(abs)}`
          : 'point --data at the folder above train/, or move NORMAL/ and PNEUMONIA/ into a train/ folder inside it'),
    );
  const found = holders.map((d) => `${path.relative(abs, d)}/`).join(' and ');
  throw new Error(`${root} has films in ${found} but none in train/: ${NEEDS_TRAIN}; ${found} are not trained on`);
}
