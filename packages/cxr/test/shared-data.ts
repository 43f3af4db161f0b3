// Where the tests find the read-only data beside the checkout (../shared), in one place, and
// needsData: the `skip` option of a test that cannot run without it. CXR_DATA and CXR_PRETRAINED
// point elsewhere. The data is never copied into the repository.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository root: compiled tests run from packages/cxr/dist/test, four levels down. */
export const REPO = path.resolve(__dirname, '..', '..', '..', '..');
export const DATA = process.env.CXR_DATA ?? path.resolve(REPO, '..', 'shared', 'data');
/** The Kaggle layout: train/ and val/, each with NORMAL/ and PNEUMONIA/. */
export const CHEST_XRAY = path.join(DATA, 'chest_xray');
export const SAMPLES_FULLRES = path.join(DATA, 'samples-fullres');
export const DICOM_SAMPLES = path.join(DATA, 'dicom-samples');
/**
 * CXR_PRETRAINED is a path list for cxr (models/backbones/store.ts pretrainedRoots); the tests use its first folder
 * that holds MobileNet v1 0.25 (what they build on), else its first folder, else shared/pretrained.
 */
export const PRETRAINED = pretrainedFolder(process.env.CXR_PRETRAINED ?? '');

function pretrainedFolder(list: string): string {
  const dirs = list.split(path.delimiter).filter(Boolean);
  return (
    dirs.find((d) => fs.existsSync(path.join(d, 'mobilenet_v1_0.25_224'))) ??
    dirs[0] ??
    path.resolve(REPO, '..', 'shared', 'pretrained')
  );
}
/** The TF.js MobileNet v1 0.25 that the backbone and transfer tests build on. */
export const MOBILENET_025 = path.join(PRETRAINED, 'mobilenet_v1_0.25_224');

/**
 * For node:test's `skip` option: false when every path exists (default: the chest_xray folder),
 * otherwise the reason, naming the first missing path, so a skipped test says what it lacks.
 */
export function needsData(...paths: string[]): string | false {
  for (const p of paths.length ? paths : [CHEST_XRAY]) {
    if (!fs.existsSync(p))
      return `needs ../shared data: ${p} is missing (set CXR_DATA or CXR_PRETRAINED to its folder)`;
  }
  return false;
}

/**
 * A Kaggle-layout folder `root` whose train/NORMAL and train/PNEUMONIA hold links to the first `n` training films
 * of each class (by name): a tiny data set of real films, nothing copied.
 */
export function linkedTrainFilms(root: string, n: number): string {
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    const dir = path.join(root, 'train', cls);
    fs.mkdirSync(dir, { recursive: true });
    const films = fs
      .readdirSync(path.join(CHEST_XRAY, 'train', cls))
      .sort()
      .slice(0, n);
    for (const f of films) fs.symlinkSync(path.join(CHEST_XRAY, 'train', cls, f), path.join(dir, f));
  }
  return root;
}

/**
 * A folder `root` whose NORMAL and PNEUMONIA hold copies of the first `n` samples-fullres films of each class (in
 * the order the folder lists them): copies, so that a test may add its own broken files beside them.
 */
export function sampleFilmCopies(root: string, n: number): string {
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    fs.mkdirSync(path.join(root, cls), { recursive: true });
    for (const f of fs.readdirSync(path.join(SAMPLES_FULLRES, cls)).slice(0, n))
      fs.copyFileSync(path.join(SAMPLES_FULLRES, cls, f), path.join(root, cls, f));
  }
  return root;
}
