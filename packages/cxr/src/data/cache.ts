// The preprocessed image cache: decoding JPEGs is by far the slowest part of an epoch, so each
// image is decoded once per output size and kept on disk as raw S×S bytes, in packs (image_pack.ts).
//
// Layout:  <cacheDir>/images-v<PREPROCESS_VERSION>/s<S>/<name>-<id>.u8   pixels, slot after slot
//                                                       <name>-<id>.json  index (slot -> sha256)
// <id> hashes the set of file contents (sha256 of every file), S, the version and the decode
// limits, so a pack is found again whatever the files are called or wherever the folder is,
// and a changed file makes a new pack. When a new pack is built, images already present in
// other packs of the same S are copied from them instead of being decoded again (for example a
// subset of a split that was cached before). Files that cannot be decoded are recorded in the
// index too, so they are reported on every run without being retried.
//
// A cache that cannot be made or written (read-only home, CXR_CACHE=/proc/x) is no error: the films
// are decoded into memory as always, one warning says so, and nothing is kept.
import * as os from 'node:os';
import * as path from 'node:path';
import type { ImageRecord } from './dataset';
import { DecodeError, type DecodeErrorCode, type DecodeLimits, DEFAULT_LIMITS, readImageFile } from './decode';
import { forEachConcurrent } from './pool';
import { writeFailure } from '../make_dirs';
import { defaultCacheDir, tellOlderImageCaches, warnUnwritableCache } from './cache_dir';
import { buildPack, PREPROCESS_VERSION, readPack } from './image_pack';
import { sha256Of } from '../hash';

export { PREPROCESS_VERSION } from './image_pack';
export { defaultCacheDir, warnUnwritableCache } from './cache_dir';

export interface CacheOptions {
  /** Output side S in pixels. */
  size: number;
  cacheDir?: string;
  /** Names the pack file for humans; defaults to the records' split. */
  name?: string;
  /** Images decoded at once; default max(2, cores). */
  concurrency?: number;
  /** Progress bar on stderr; default: when stderr is a terminal. */
  progress?: boolean;
  limits?: Partial<DecodeLimits>;
  /** Receives one line per skipped file; default console.warn. */
  warn?: (line: string) => void;
  /** The one line saying the cache cannot be written; default console.warn (not `warn`, which evaluate silences). */
  warnUnwritable?: (line: string) => void;
  /** Filling the cache is the point (`cxr data cache`): a cache that cannot be written is an error, not a warning. */
  mustWrite?: boolean;
}

export interface CachedImage extends ImageRecord {
  sha256: string;
  /** Position of the pixels in CachedImageSet.pixels (duplicate files share a slot). */
  slot: number;
  /** Size of the source image before resizing. */
  width: number;
  height: number;
}

export interface SkippedFile {
  path: string;
  code: DecodeErrorCode;
  message: string;
}

/**
 * How a set's images came to be. A new pack: decoded + copied + duplicates = the images; files that
 * could not be decoded are in `skipped`, never in these counts.
 */
export interface CacheStats {
  /** Distinct images decoded in this call (0 when the pack was reused). */
  decoded: number;
  /** Distinct images copied from other packs instead of decoded. */
  copied: number;
  /** Images whose file has the same bytes as another file of the set: they share its slot, read once. */
  duplicates: number;
  /** True when the whole pack was already on disk. */
  reused: boolean;
  seconds: number;
  packFile: string;
}

/** A split's images in memory, S×S uint8 each; `images[i]`'s pixels are `pixelsOf(i)`. */
export class CachedImageSet {
  constructor(
    readonly size: number,
    readonly images: readonly CachedImage[],
    /** slotCount × S × S bytes; shared by subsets. */
    readonly pixels: Uint8Array,
    readonly skipped: readonly SkippedFile[],
    readonly stats: CacheStats,
  ) {}

  get length(): number {
    return this.images.length;
  }

  pixelsOf(i: number): Uint8Array {
    const n = this.size * this.size;
    const slot = this.images[i].slot;
    return this.pixels.subarray(slot * n, (slot + 1) * n);
  }

  labels(): Uint8Array {
    return Uint8Array.from(this.images, (im) => im.label);
  }

  /** A view on some of the images (e.g. the validation part of a split); pixels are shared. */
  subset(indices: readonly number[]): CachedImageSet {
    return new CachedImageSet(
      this.size,
      indices.map((i) => this.images[i]),
      this.pixels,
      [],
      this.stats,
    );
  }
}

interface Hashed {
  record: ImageRecord;
  sha256: string;
}

/**
 * Returns the records' images at size S from the cache, decoding only what no pack holds yet.
 * Unreadable or undecodable files are skipped and listed in `skipped` (one warning line each).
 */
export async function cacheImages(records: readonly ImageRecord[], opts: CacheOptions): Promise<CachedImageSet> {
  const t0 = performance.now();
  const size = opts.size;
  if (!Number.isInteger(size) || size < 1 || size > 4096)
    throw new RangeError(`cache: size must be an integer in 1..4096, got ${size}`);
  const limits: DecodeLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const concurrency = opts.concurrency ?? Math.max(2, os.availableParallelism());
  const warn = opts.warn ?? ((line: string) => console.warn(line));
  const root = opts.cacheDir ?? defaultCacheDir();
  const dir = path.join(root, `images-v${PREPROCESS_VERSION}`, `s${size}`);
  const name = sanitize(opts.name ?? defaultName(records));

  // 1. Content hashes. Reading every file again is cheap next to decoding it.
  const hashed: Array<Hashed | undefined> = new Array(records.length);
  const skipped: SkippedFile[] = [];
  await forEachConcurrent(records, 8, async (record, i) => {
    try {
      const buf = await readImageFile(record.path, limits);
      hashed[i] = { record, sha256: sha256Of(buf) };
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      skipped.push({ path: record.path, code: err.code, message: err.message });
    }
  });
  const ok = hashed.filter((h): h is Hashed => h !== undefined);
  const unique = [...new Set(ok.map((h) => h.sha256))].sort();

  const id = sha256Of(Buffer.from(JSON.stringify({ v: PREPROCESS_VERSION, size, limits, unique }))).slice(0, 16);
  const base = path.join(dir, `${name}-${id}`);

  // 2. The pack itself, or a new one.
  let pack = await readPack(base, size);
  let decoded = 0;
  let copied = 0;
  const reused = pack !== undefined;
  if (!pack) {
    tellOlderImageCaches(root, PREPROCESS_VERSION, warn);
    const firstPath = new Map<string, string>();
    for (const h of ok) if (!firstPath.has(h.sha256)) firstPath.set(h.sha256, h.record.path);
    const built = await buildPack(unique, firstPath, {
      dir,
      base,
      size,
      limits,
      concurrency,
      progress: opts.progress,
      name,
      unwritable: (err) => {
        if (opts.mustWrite)
          throw new Error(`image cache ${root}: cannot write there (${writeFailure(err)}); choose a writable folder`);
        warnUnwritableCache('image cache', root, err, opts.warnUnwritable ?? console.warn);
      },
    });
    pack = built.pack;
    decoded = built.decoded;
    copied = built.copied;
  }

  // 3. Map records onto slots.
  const slotOf = new Map(pack.index.slots.map((s, i) => [s.sha256, i] as const));
  const failureOf = new Map(pack.index.failures.map((f) => [f.sha256, f] as const));
  const images: CachedImage[] = [];
  for (const h of ok) {
    const slot = slotOf.get(h.sha256);
    if (slot !== undefined) {
      const s = pack.index.slots[slot];
      images.push({ ...h.record, sha256: h.sha256, slot, width: s.width, height: s.height });
      continue;
    }
    const f = failureOf.get(h.sha256);
    if (!f) throw new Error(`cache: pack ${base} has no entry for ${h.record.path}; delete it and retry`);
    skipped.push({ path: h.record.path, code: f.code as DecodeErrorCode, message: `${h.record.path}: ${f.detail}` });
  }
  skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const s of skipped) warn(`warning: skipping ${s.message}`);

  const stats: CacheStats = {
    decoded,
    copied,
    duplicates: images.length - new Set(images.map((im) => im.slot)).size,
    reused,
    seconds: (performance.now() - t0) / 1000,
    packFile: `${base}.u8`,
  };
  return new CachedImageSet(size, images, pack.pixels, skipped, stats);
}

function defaultName(records: readonly ImageRecord[]): string {
  const splits = [...new Set(records.map((r) => r.split))];
  return splits.length === 1 ? splits[0] : splits.length === 0 ? 'empty' : 'mixed';
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 64) || 'images';
}
