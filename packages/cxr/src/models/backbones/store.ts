// Where backbone weights are kept and how they get there. Downloaded (or imported from a local
// copy) once into <cache>/backbones/<name>/ with a SHA256SUMS of what was verified; every later
// use re-checks the files against it, so a truncated or altered file is caught before training.
// Checks: the sha256 of canonical files where known (known_digests.ts), Keras' md5 and size for
// its .h5 files where keras.applications has them, and always the recorded sha256.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultCacheDir } from '../../data/cache';
import { startProgress } from '../../data/progress';
import { repoRoot } from '../../paths';
import { readWeightsManifest } from '../io';
import { writeDirAtomic } from '../dir_swap';
import { weightFilesOf } from '../weights_manifest';
import { KNOWN_SHA256 } from './known_digests';
import type { BackboneSpec } from './registry';

export interface LocatedWeights {
  /** A TF.js model folder (containing model.json) or a Keras .h5 file. */
  path: string;
  source: 'cache' | 'local' | 'pretrained';
  /** sha256 of every file, by name. */
  sha256: Record<string, string>;
}

const SUMS = 'SHA256SUMS';

export function backboneCacheDir(): string {
  return path.join(defaultCacheDir(), 'backbones');
}

/**
 * Read-only folders searched after the cache: $CXR_PRETRAINED (path list), then shared/pretrained
 * beside the repository.
 */
export function pretrainedRoots(): string[] {
  const env = (process.env.CXR_PRETRAINED ?? '').split(path.delimiter).filter(Boolean);
  return [...env, path.resolve(repoRoot(), '..', 'shared', 'pretrained')];
}

function digest(file: string, algo: 'sha256' | 'md5'): string {
  return crypto.createHash(algo).update(fs.readFileSync(file)).digest('hex');
}

/** The files a weights location consists of (model.json and its shards, or the .h5). */
function weightFiles(spec: BackboneSpec, dir: string): string[] {
  if (spec.weights.format === 'keras-h5') return [spec.weights.file];
  const fetchAgain = `cxr backbone fetch ${spec.name} --force`;
  const remedy = `use another copy of ${spec.name}'s weights, or fetch them again: ${fetchAgain}`;
  return ['model.json', ...weightFilesOf(readWeightsManifest(dir, remedy))];
}

function readSums(dir: string): Record<string, string> | null {
  const p = path.join(dir, SUMS);
  if (!fs.existsSync(p)) return null;
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(p, 'utf8').split('\n')) {
    const m = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line.trim());
    if (m) out[m[2]] = m[1];
  }
  return out;
}

/**
 * Checks the files of `dir` and returns their sha256. Throws on any mismatch with a known
 * digest, Keras' md5/size, or `recorded` (the cache's own SHA256SUMS).
 */
export function verifyWeights(
  spec: BackboneSpec,
  dir: string,
  recorded?: Record<string, string> | null,
): Record<string, string> {
  const known = KNOWN_SHA256[spec.name] ?? {};
  const out: Record<string, string> = {};
  for (const f of weightFiles(spec, dir)) {
    const p = path.join(dir, f);
    if (!fs.existsSync(p)) throw new Error(`${spec.name}: ${p} is missing`);
    const sha = digest(p, 'sha256');
    const want = known[f] ?? recorded?.[f];
    if (want && want !== sha)
      throw new Error(`${spec.name}: ${p} has sha256 ${sha}, expected ${want} (corrupt or not the canonical file)`);
    if (f === spec.weights.file && spec.weights.format === 'keras-h5') checkKerasFile(spec, p);
    out[f] = sha;
  }
  return out;
}

/** Keras' own checks of its .h5 file (size and md5, where keras.applications has them). */
function checkKerasFile(spec: BackboneSpec, p: string): void {
  if (spec.weights.bytes && fs.statSync(p).size !== spec.weights.bytes) {
    throw new Error(`${spec.name}: ${p} is ${fs.statSync(p).size} bytes, expected ${spec.weights.bytes}`);
  }
  if (spec.weights.md5 && digest(p, 'md5') !== spec.weights.md5)
    throw new Error(`${spec.name}: ${p} fails Keras' md5 check (${spec.weights.md5})`);
}

function located(
  spec: BackboneSpec,
  dir: string,
  source: LocatedWeights['source'],
  sha256: Record<string, string>,
): LocatedWeights {
  return { path: spec.weights.format === 'keras-h5' ? path.join(dir, spec.weights.file) : dir, source, sha256 };
}

/** The folder holding a backbone's files under a local path (a folder or the file itself), or null. */
function folderAt(spec: BackboneSpec, p: string): string | null {
  if (!fs.existsSync(p)) return null;
  const isDir = fs.statSync(p).isDirectory();
  if (spec.weights.format === 'tfjs-layers') {
    if (!isDir) return path.basename(p) === 'model.json' ? path.dirname(p) : null;
    return fs.existsSync(path.join(p, 'model.json')) ? p : null;
  }
  if (!isDir) return p.endsWith('.h5') ? path.dirname(p) : null;
  return fs.existsSync(path.join(p, spec.weights.file)) ? p : null;
}

/**
 * Weights for `spec`: the explicit path if given (a TF.js model folder or model.json, a .h5 or
 * a folder holding it), else the cache, else a pretrained folder. Null if none is there.
 */
export function locateWeights(spec: BackboneSpec, explicit?: string): LocatedWeights | null {
  if (explicit) {
    const abs = path.resolve(explicit);
    const dir = folderAt(spec, abs);
    const wanted =
      spec.weights.format === 'keras-h5' ? `.h5 weights (${spec.weights.file})` : 'TF.js model (model.json)';
    if (!dir) throw new Error(`${explicit}: no ${wanted} for ${spec.name}`);
    if (spec.weights.format === 'keras-h5' && !fs.statSync(abs).isDirectory()) {
      // A renamed .h5 is fine when given explicitly; the canonical name only matters for lookups. Its content is
      // checked as the canonical file's would be (a truncated or other download was taken unchecked).
      checkKerasFile(spec, abs);
      const sha = digest(abs, 'sha256');
      return { path: abs, source: 'local', sha256: { [path.basename(abs)]: sha } };
    }
    return located(spec, dir, 'local', verifyWeights(spec, dir));
  }
  const cached = path.join(backboneCacheDir(), spec.name);
  const sums = readSums(cached);
  if (sums) return located(spec, cached, 'cache', verifyWeights(spec, cached, sums));
  const folderName = path.basename(path.dirname(spec.weights.url));
  for (const root of pretrainedRoots()) {
    for (const candidate of [path.join(root, spec.name), path.join(root, folderName), root]) {
      const dir = folderAt(spec, candidate);
      if (dir) return located(spec, dir, 'pretrained', verifyWeights(spec, dir));
    }
  }
  return null;
}

async function download(url: string, dest: string, progress: boolean): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
    throw new Error(`could not download ${url} (${cause})`);
  }
  if (!res.ok || !res.body) throw new Error(`could not download ${url}: HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length') ?? 0);
  const bar = startProgress(`${path.basename(dest)} (KiB)`, Math.ceil(total / 1024), progress && total > 0);
  const out = fs.createWriteStream(dest);
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      bar.tick(chunk.length / 1024);
    }
  } finally {
    bar.stop();
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  }
  if (total > 0 && fs.statSync(dest).size !== total)
    throw new Error(`download of ${url} is truncated (${fs.statSync(dest).size} of ${total} bytes)`);
}

export interface FetchOptions {
  /** Import from this local copy instead of downloading. */
  from?: string;
  progress?: boolean;
  log?: (line: string) => void;
  /** Fetch again even when the cache has the files. */
  force?: boolean;
}

/** Puts a backbone's weights into the cache (download or local copy), verified, and returns them. */
export async function fetchWeights(spec: BackboneSpec, opts: FetchOptions = {}): Promise<LocatedWeights> {
  const log = opts.log ?? (() => {});
  const dir = path.join(backboneCacheDir(), spec.name);
  if (!opts.force && !opts.from && readSums(dir)) return locateWeights(spec)!;
  const progress = opts.progress ?? process.stderr.isTTY === true;
  await writeDirAtomic(dir, async (tmp) => {
    if (opts.from) {
      const src = folderAt(spec, path.resolve(opts.from));
      if (!src)
        throw new Error(
          `${opts.from}: no ${spec.weights.format === 'keras-h5' ? spec.weights.file : 'model.json'} for ${spec.name}`,
        );
      const srcFile = fs.statSync(path.resolve(opts.from)).isDirectory() ? null : path.resolve(opts.from);
      if (srcFile && spec.weights.format === 'keras-h5') fs.copyFileSync(srcFile, path.join(tmp, spec.weights.file));
      else for (const f of weightFiles(spec, src)) fs.copyFileSync(path.join(src, f), path.join(tmp, f));
      log(`${spec.name}: copied from ${src}`);
    } else {
      log(`${spec.name}: downloading ${spec.weights.url}`);
      try {
        await download(spec.weights.url, path.join(tmp, spec.weights.file), progress);
        if (spec.weights.format === 'tfjs-layers') {
          const base = spec.weights.url.slice(0, spec.weights.url.lastIndexOf('/') + 1);
          for (const f of weightFiles(spec, tmp).slice(1)) {
            if (f.includes('/') || f.includes('..'))
              throw new Error(`${spec.weights.url}: unexpected shard path '${f}'`);
            await download(base + f, path.join(tmp, f), progress);
          }
        }
      } catch (e) {
        throw new Error(
          `${(e as Error).message}; without network, copy the files from elsewhere and run ` +
            `'cxr backbone fetch ${spec.name} --weights PATH' or pass --weights PATH to cxr train`,
        );
      }
    }
    const sums = verifyWeights(spec, tmp);
    fs.writeFileSync(
      path.join(tmp, SUMS),
      Object.entries(sums)
        .map(([f, h]) => `${h}  ${f}\n`)
        .join(''),
    );
  });
  log(`${spec.name}: verified and stored in ${dir}`);
  return locateWeights(spec)!;
}
