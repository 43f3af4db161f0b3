// One pack of the preprocessed image cache on disk (cache.ts decides which pack a set of films needs):
//   <dir>/<name>-<id>.u8    S×S pixels, slot after slot
//   <dir>/<name>-<id>.json  the index: which content hash is in which slot, and which failed to decode and why
// Reading a pack back, and building a new one: images other packs of the same S hold are copied from
// them, the rest decoded. Pixels are written before the index, each atomically, so a pack is only
// ever found complete.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { DecodeError, type DecodeErrorCode, type DecodeLimits, decodeBuffer, readImageFile } from './decode';
import { forEachConcurrent } from './pool';
import { startProgress } from './progress';
import { makeDirs } from '../make_dirs';
import { sha256Of } from '../hash';

/**
 * Bump whenever decode.ts would produce different pixels for the same file. 3: a 16-bit PNG holding 12- or 14-bit
 * values is read at its own range (png16.ts), so a pack of version 2 may hold such a film darkened.
 */
export const PREPROCESS_VERSION = 3;

const indexSchema = z.object({
  format: z.literal('cxr-image-pack'),
  version: z.literal(PREPROCESS_VERSION),
  size: z.number().int().positive(),
  slots: z.array(z.object({ sha256: z.string(), width: z.number().int(), height: z.number().int() })),
  failures: z.array(z.object({ sha256: z.string(), code: z.string(), detail: z.string() })),
});
export type PackIndex = z.infer<typeof indexSchema>;

export interface Pack {
  index: PackIndex;
  pixels: Uint8Array;
}

/**
 * Failures that say what a file was at one moment (a read that failed), not what its content decodes to. buildPack
 * no longer writes them; a pack an earlier cxr wrote with one is rebuilt, and no donor's is taken over, or that
 * content would be skipped on every run. Not TOO_LARGE: a deflated DICOM past the inflation cap is its content's,
 * and a pack that holds one would be rebuilt on every run.
 */
const MOMENTARY = new Set<string>(['READ_FAILED']);

/** The pack at `base` (.u8 and .json), or undefined when it is missing, foreign or incomplete. */
export async function readPack(base: string, size: number): Promise<Pack | undefined> {
  const index = await readIndex(`${base}.json`);
  if (!index || index.size !== size) return undefined;
  if (index.failures.some((f) => MOMENTARY.has(f.code))) return undefined;
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

export interface BuildContext {
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

export interface BuiltPack {
  pack: Pack;
  /** Distinct images decoded here; files that failed to decode are not among them. */
  decoded: number;
  /** Distinct images copied from other packs; failures another pack recorded are not among them. */
  copied: number;
}

/** Builds the pack of the distinct contents `unique` (sha256, sorted), `pathOf` naming a file of each. */
export async function buildPack(
  unique: readonly string[],
  pathOf: ReadonlyMap<string, string>,
  ctx: BuildContext,
): Promise<BuiltPack> {
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
          copied++;
        } else {
          // A known failure is taken over without a retry, but it is no image: it counts as skipped.
          results.set(sha, entry);
        }
      }
    } finally {
      await fh.close();
    }
  }

  const todo = unique.filter((sha) => !results.has(sha));
  let decoded = 0;
  // The caller hashed each file a moment ago; a read that fails now, or gives other bytes, says what the file
  // is at this moment (an I/O error, a file being replaced), not what the content `sha` decodes to. Such a
  // failure is this run's alone: recorded in the pack it would skip the content for good (and, through donors,
  // in every later pack), and other bytes' pixels would be kept under `sha`. The pack is then not written.
  let transient = false;
  const bar = startProgress(`caching ${ctx.name} at ${ctx.size}px`, todo.length, ctx.progress);
  try {
    await forEachConcurrent(todo, ctx.concurrency, async (sha) => {
      const file = pathOf.get(sha)!;
      try {
        let buf: Buffer;
        try {
          buf = await readImageFile(file, ctx.limits);
          if (sha256Of(buf) !== sha) throw new DecodeError('READ_FAILED', file, 'changed while being cached');
        } catch (err) {
          if (err instanceof DecodeError) transient = true;
          throw err;
        }
        const img = await decodeBuffer(buf, ctx.size, {
          name: file,
          limits: ctx.limits,
        });
        pixels.set(img.pixels, slotOf.get(sha)! * n);
        results.set(sha, { width: img.width, height: img.height });
        decoded++;
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

  if (transient) return { pack: { index, pixels: packed }, decoded, copied };
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
  return { pack: { index, pixels: packed }, decoded, copied };
}

type DonorEntry = { slot: number; width: number; height: number } | { code: DecodeErrorCode; detail: string };

/** The other complete packs of size S in `dir` that hold any of the `wanted` contents, and what they hold. */
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
      if (wanted.has(f.sha256) && !MOMENTARY.has(f.code))
        entries.set(f.sha256, { code: f.code as DecodeErrorCode, detail: f.detail });
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
