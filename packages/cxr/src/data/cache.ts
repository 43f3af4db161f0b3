// The preprocessed image cache: decoding JPEGs is by far the slowest part of an epoch, so each
// image is decoded once per output size and kept on disk as raw S×S bytes.
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
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import type { ImageRecord } from './dataset';
import {
  DecodeError,
  type DecodeErrorCode,
  type DecodeLimits,
  DEFAULT_LIMITS,
  decodeBuffer,
  readImageFile,
} from './decode';
import { forEachConcurrent } from './pool';
import { startProgress } from './progress';
import { makeDirs, writeFailure } from '../make_dirs';
import { defaultCacheDir, warnUnwritableCache } from './cache_dir';

/** Bump whenever decode.ts would produce different pixels for the same file. */
export const PREPROCESS_VERSION = 2;

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

export interface CacheStats {
  /** Images decoded in this call (0 when the pack was reused). */
  decoded: number;
  /** Images copied from other packs instead of decoded. */
  copied: number;
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

const indexSchema = z.object({
  format: z.literal('cxr-image-pack'),
  version: z.literal(PREPROCESS_VERSION),
  size: z.number().int().positive(),
  slots: z.array(z.object({ sha256: z.string(), width: z.number().int(), height: z.number().int() })),
  failures: z.array(z.object({ sha256: z.string(), code: z.string(), detail: z.string() })),
});
type PackIndex = z.infer<typeof indexSchema>;

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
      hashed[i] = { record, sha256: sha256(buf) };
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      skipped.push({ path: record.path, code: err.code, message: err.message });
    }
  });
  const ok = hashed.filter((h): h is Hashed => h !== undefined);
  const unique = [...new Set(ok.map((h) => h.sha256))].sort();

  const id = sha256(Buffer.from(JSON.stringify({ v: PREPROCESS_VERSION, size, limits, unique }))).slice(0, 16);
  const base = path.join(dir, `${name}-${id}`);

  // 2. The pack itself, or a new one.
  let pack = await readPack(base, size);
  let decoded = 0;
  let copied = 0;
  const reused = pack !== undefined;
  if (!pack) {
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
    reused,
    seconds: (performance.now() - t0) / 1000,
    packFile: `${base}.u8`,
  };
  return new CachedImageSet(size, images, pack.pixels, skipped, stats);
}

interface Pack {
  index: PackIndex;
  pixels: Uint8Array;
}

async function readPack(base: string, size: number): Promise<Pack | undefined> {
  const index = await readIndex(`${base}.json`);
  if (!index || index.size !== size) return undefined;
  try {
    const pixels = await fs.readFile(`${base}.u8`);
    // A short file means an interrupted or foreign write; rebuilding is always safe.
    if (pixels.length !== index.slots.length * size * size) return undefined;
    return { index, pixels: new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.length) };
  } catch {
    return undefined;
  }
}

async function readIndex(file: string): Promise<PackIndex | undefined> {
  try {
    const parsed = indexSchema.safeParse(JSON.parse(await fs.readFile(file, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

interface BuildContext {
  dir: string;
  base: string;
  size: number;
  limits: DecodeLimits;
  concurrency: number;
  progress?: boolean;
  name: string;
  /** Told when the pack cannot be written; the pack is then used from memory only. */
  unwritable: (err: unknown) => void;
}

async function buildPack(
  unique: readonly string[],
  pathOf: ReadonlyMap<string, string>,
  ctx: BuildContext,
): Promise<{ pack: Pack; decoded: number; copied: number }> {
  const n = ctx.size * ctx.size;
  // Images land straight in their provisional slot (position in `unique`), so the full split
  // is held once, not once per image plus once packed; failures are squeezed out at the end.
  const pixels = new Uint8Array(unique.length * n);
  const slotOf = new Map(unique.map((sha, i) => [sha, i] as const));
  const results = new Map<string, { width: number; height: number } | { code: DecodeErrorCode; detail: string }>();

  const donors = await findDonors(ctx.dir, ctx.base, ctx.size, new Set(unique));
  let copied = 0;
  for (const donor of donors) {
    const fh = await fs.open(donor.file, 'r').catch(() => undefined);
    if (!fh) continue;
    try {
      for (const [sha, entry] of donor.entries) {
        if (results.has(sha)) continue;
        if ('slot' in entry) {
          const { bytesRead } = await fh.read(pixels, slotOf.get(sha)! * n, n, entry.slot * n);
          if (bytesRead !== n) continue;
          results.set(sha, { width: entry.width, height: entry.height });
        } else {
          results.set(sha, entry);
        }
        copied++;
      }
    } finally {
      await fh.close();
    }
  }

  const todo = unique.filter((sha) => !results.has(sha));
  const bar = startProgress(`caching ${ctx.name} at ${ctx.size}px`, todo.length, ctx.progress);
  try {
    await forEachConcurrent(todo, ctx.concurrency, async (sha) => {
      const file = pathOf.get(sha)!;
      try {
        const img = await decodeBuffer(await readImageFile(file, ctx.limits), ctx.size, {
          name: file,
          limits: ctx.limits,
        });
        pixels.set(img.pixels, slotOf.get(sha)! * n);
        results.set(sha, { width: img.width, height: img.height });
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        results.set(sha, { code: err.code, detail: err.detail });
      }
      bar.tick();
    });
  } finally {
    bar.stop();
  }

  const index: PackIndex = {
    format: 'cxr-image-pack',
    version: PREPROCESS_VERSION,
    size: ctx.size,
    slots: [],
    failures: [],
  };
  unique.forEach((sha, i) => {
    const r = results.get(sha)!;
    if ('code' in r) {
      index.failures.push({ sha256: sha, code: r.code, detail: r.detail });
      return;
    }
    const slot = index.slots.length;
    if (slot !== i) pixels.copyWithin(slot * n, i * n, (i + 1) * n);
    index.slots.push({ sha256: sha, width: r.width, height: r.height });
  });
  const packed = pixels.subarray(0, index.slots.length * n);

  try {
    makeDirs(ctx.dir);
    // Pixels first, index last: a pack is only ever found complete.
    await writeAtomic(`${ctx.base}.u8`, packed);
    await writeAtomic(`${ctx.base}.json`, JSON.stringify(index));
  } catch (err) {
    // Only the file system's refusals: anything else is a bug to see, not a cache to do without.
    if (typeof (err as NodeJS.ErrnoException).code !== 'string') throw err;
    ctx.unwritable(err);
  }
  return { pack: { index, pixels: packed }, decoded: todo.length, copied };
}

type DonorEntry = { slot: number; width: number; height: number } | { code: DecodeErrorCode; detail: string };

async function findDonors(
  dir: string,
  exclude: string,
  size: number,
  wanted: ReadonlySet<string>,
): Promise<Array<{ file: string; entries: Map<string, DonorEntry> }>> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const donors: Array<{ file: string; entries: Map<string, DonorEntry> }> = [];
  for (const nm of names) {
    if (!nm.endsWith('.json')) continue;
    const base = path.join(dir, nm.slice(0, -'.json'.length));
    if (base === exclude) continue;
    const index = await readIndex(`${base}.json`);
    if (!index || index.size !== size) continue;
    const st = await fs.stat(`${base}.u8`).catch(() => undefined);
    if (!st || st.size !== index.slots.length * size * size) continue;
    const entries = new Map<string, DonorEntry>();
    index.slots.forEach((s, slot) => {
      if (wanted.has(s.sha256)) entries.set(s.sha256, { slot, width: s.width, height: s.height });
    });
    for (const f of index.failures) {
      if (wanted.has(f.sha256)) entries.set(f.sha256, { code: f.code as DecodeErrorCode, detail: f.detail });
    }
    if (entries.size > 0) donors.push({ file: `${base}.u8`, entries });
  }
  return donors;
}

async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  // Unique temp name + rename: concurrent builders of the same pack write identical bytes and
  // readers never see a half-written file.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (err) {
    // The write's error is the one to report; a folder that refused the file refuses its removal too.
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
}

function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

function defaultName(records: readonly ImageRecord[]): string {
  const splits = [...new Set(records.map((r) => r.split))];
  return splits.length === 1 ? splits[0] : splits.length === 0 ? 'empty' : 'mixed';
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 64) || 'images';
}
