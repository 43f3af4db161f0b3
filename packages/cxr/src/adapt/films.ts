// A site's films for adaptation: every file under a folder (recursively; the format is sniffed
// from the bytes, so DICOM files without an extension count), each decoded, preprocessed and
// screened by the source model's Predictor, exactly as a prediction would be. Films the OOD gate
// or the image checks flag are left out; files that are not images are counted apart. A file with
// the same bytes as a film already taken counts once: sixty copies of one film are one film, and
// statistics re-estimated on them would fit that film alone.
import { normalizeImages } from '../data/preprocess';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../predict/errors';
import type { Predictor } from '../predict/predictor';
import { sha256Of } from '../hash';
import { missingPathWords, statIfThere } from '../paths';

/**
 * Why `dir` cannot be a folder of films (null when it can): missing and not a folder told apart, as
 * `cxr robustness --outside` tells them (robustness/images.ts).
 */
export function filmFolderProblem(dir: string): string | null {
  const st = statIfThere(dir);
  if (!st) return missingPathWords(dir);
  if (!st.isDirectory()) return 'is a file, not a folder: give the folder of the films (searched recursively)';
  return null;
}

/** Files under `dir`, sorted, hidden entries skipped (".DS_Store", ".git"...); symlinked folders not followed. */
export function listFiles(dir: string): string[] {
  const problem = filmFolderProblem(dir);
  if (problem) throw new Error(`${dir}: ${problem}`);
  const out: string[] = [];
  const walk = (d: string) => {
    const entries = fs
      .readdirSync(d, { withFileTypes: true })
      .filter((e) => !e.name.startsWith('.'))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() || (e.isSymbolicLink() && fs.statSync(p, { throwIfNoEntry: false })?.isFile())) out.push(p);
    }
  };
  walk(dir);
  return out;
}

export interface SiteFilms {
  size: number;
  /** n × size × size model inputs of the films used (normalised as cxr.json says), in `files` order. */
  pixels: Uint8Array;
  files: string[];
  sha256: string[];
  rejected: { file: string; reason: string }[];
  unreadable: { file: string; reason: string }[];
  /** Files with the same bytes as a film used (`of`), left out. */
  duplicates: { file: string; of: string }[];
}

export interface ReadFilmsOptions {
  /** Files decoded at once (decoding overlaps; the model pass is serial anyway). */
  concurrency?: number;
  onFile?: (done: number, total: number) => void;
}

type Outcome =
  | { kind: 'used'; pixels: Uint8Array; sha256: string }
  | { kind: 'rejected' | 'unreadable'; reason: string };

async function screenFile(predictor: Predictor, file: string): Promise<Outcome> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    return { kind: 'unreadable', reason: (e as Error).message };
  }
  try {
    const s = await predictor.screen(bytes);
    if (s.problems.length) return { kind: 'rejected', reason: s.problems.join('; ') };
    return { kind: 'used', pixels: s.pixels, sha256: sha256Of(bytes) };
  } catch (e) {
    if (e instanceof InputError) return { kind: 'unreadable', reason: e.message };
    throw e;
  }
}

/** Reads and screens every file under `dir` with `predictor` (the source model). */
export async function readSiteFilms(
  predictor: Predictor,
  dir: string,
  opts: ReadFilmsOptions = {},
): Promise<SiteFilms> {
  const files = listFiles(dir);
  const size = predictor.model.meta.inputSize;
  const outcomes: Outcome[] = new Array(files.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      outcomes[i] = await screenFile(predictor, files[i]);
      opts.onFile?.(++done, files.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
  const first = new Map<string, string>();
  const duplicates: SiteFilms['duplicates'] = [];
  const used = outcomes.flatMap((o, i) => {
    if (o.kind !== 'used') return [];
    const of = first.get(o.sha256);
    if (of !== undefined) {
      duplicates.push({ file: files[i], of });
      return [];
    }
    first.set(o.sha256, files[i]);
    return [{ o, file: files[i] }];
  });
  const pixels = new Uint8Array(used.length * size * size);
  used.forEach(({ o }, k) => pixels.set(o.kind === 'used' ? o.pixels : [], k * size * size));
  normalizeImages(pixels, used.length, size, predictor.model.meta.preprocessing.normalize);
  const others = (kind: 'rejected' | 'unreadable') =>
    outcomes.flatMap((o, i) => (o.kind === kind ? [{ file: files[i], reason: o.reason }] : []));
  return {
    size,
    pixels,
    files: used.map((u) => u.file),
    sha256: used.map((u) => (u.o.kind === 'used' ? u.o.sha256 : '')),
    rejected: others('rejected'),
    unreadable: others('unreadable'),
    duplicates,
  };
}

/** sha256 over the sorted per-film sha256s: names the set of films, whatever their order or paths. */
export function filmsFingerprint(sha256s: readonly string[]): string {
  return crypto
    .createHash('sha256')
    .update([...sha256s].sort().join('\n'))
    .digest('hex');
}
