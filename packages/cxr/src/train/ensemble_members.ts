// Which trained models `cxr ensemble` (and `--soup`) may combine: model folders, each named once (by what
// it is: a copy or a symlink of a member is that member), none an ensemble itself, all taking the same input
// and all validated on one split, which the combined model's temperature and thresholds are chosen on.
// A refusal says which members differ, how, and the `cxr train` options that make them one.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMeta, readModelFile, readWeightsManifest } from '../models/io';
import type { ModelMeta } from '../models/metadata';
import { weightFilesOf } from '../models/weights_manifest';
import { recordedSplit } from '../data/dataset_images';

/** Members that cannot be combined, and why: named by the caller as a refusal, not a failure of the work. */
export class EnsembleRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnsembleRefused';
  }
}

/** The split a member was validated on, as one comparable value. */
function splitKey(meta: ModelMeta): string {
  const s = recordedSplit(meta);
  return JSON.stringify({
    fingerprint: meta.data.fingerprint ?? null,
    valFraction: s.valFraction ?? null,
    seed: s.seed ?? null,
    valSplit: s.valSplit,
    limitPerClass: s.limitPerClass,
  });
}

const short = (fingerprint: unknown) => (typeof fingerprint === 'string' ? `${fingerprint.slice(0, 8)}…` : 'none');

/**
 * How two members' validation splits differ, in words, and the `cxr train` options that make them one.
 * The fingerprint hashes the split's films, so it differs whenever anything else does: it is named only
 * when nothing else explains it (other films in the data folder, or another folder).
 */
export function splitDifference(a: ModelMeta, b: ModelMeta): { what: string[]; fix: string[] } {
  const [sa, sb] = [recordedSplit(a), recordedSplit(b)];
  const what: string[] = [];
  const fix: string[] = [];
  if (sa.seed !== sb.seed) {
    // Models from before split seeds were recorded have none: say so rather than print "undefined".
    const seed = (x: number | undefined) => (x === undefined ? 'an unrecorded seed' : `seed ${x}`);
    const both = sa.seed !== undefined && sb.seed !== undefined;
    what.push(both ? `split with seeds ${sa.seed} and ${sb.seed}` : `split with ${seed(sa.seed)} and ${seed(sb.seed)}`);
    fix.push(sa.seed === undefined ? 'one --split-seed for both (retrain both)' : `--split-seed ${sa.seed}`);
  }
  if (sa.valFraction !== sb.valFraction) {
    what.push(`validation fractions ${sa.valFraction} and ${sb.valFraction}`);
    // cxr train has no option for it: the fraction is the recipe's.
    fix.push(`the same --recipe (its validation fraction is ${sa.valFraction})`);
  }
  if (sa.valSplit !== sb.valSplit) {
    what.push(`validation patients chosen ${sa.valSplit} and ${sb.valSplit}`);
    fix.push(`--val-split ${sa.valSplit}`);
  }
  if (sa.limitPerClass !== sb.limitPerClass) {
    const films = (n: number) => (n > 0 ? `at most ${n}` : 'all');
    what.push(`${films(sa.limitPerClass)} and ${films(sb.limitPerClass)} training films per class`);
    fix.push(`--limit-per-class ${sa.limitPerClass}`);
  }
  if (what.length === 0) {
    const [ra, rb] = [a.data.root, b.data.root];
    const where = typeof ra === 'string' && typeof rb === 'string' && ra !== rb ? ` (${ra} and ${rb})` : '';
    what.push(
      `different data${where}: split fingerprints ${short(a.data.fingerprint)} and ${short(b.data.fingerprint)}`,
    );
    fix.push('the same --data folder, with the same films');
  }
  return { what, fix };
}

/** The normalisation a member's input gets; absent is 'none' (cxr.json files from before it was recorded). */
const normalizeOf = (m: ModelMeta) => m.preprocessing.normalize ?? 'none';

/** How a preprocessing field is named to people; others by their cxr.json path. */
const PREPROCESSING_NAMES: Record<string, string> = { normalize: 'normalisation', scale: 'pixel scale' };

const shown = (v: unknown) => (v === undefined ? 'not set' : typeof v === 'string' ? v : JSON.stringify(v));

/**
 * How two members' inputs differ, one phrase per field ("input size 32 vs 48"): what a caller feeds a member,
 * which an ensemble feeds all of them alike. `inModel` describes a step inside the member's own graph (a
 * backbone's RGB scaling), not its input, so a backbone member and a from-scratch member take the same input.
 */
export function inputDifferences(a: ModelMeta, b: ModelMeta): string[] {
  const out: string[] = [];
  if (a.inputSize !== b.inputSize) out.push(`input size ${a.inputSize} vs ${b.inputSize}`);
  const prep = (m: ModelMeta): Record<string, unknown> => {
    const { inModel: _inside, ...outside } = m.preprocessing;
    return { ...outside, normalize: normalizeOf(m) };
  };
  const [pa, pb] = [prep(a), prep(b)];
  for (const k of [...new Set([...Object.keys(pa), ...Object.keys(pb)])].sort()) {
    if (JSON.stringify(pa[k]) !== JSON.stringify(pb[k]))
      out.push(`${PREPROCESSING_NAMES[k] ?? `preprocessing.${k}`} ${shown(pa[k])} vs ${shown(pb[k])}`);
  }
  if (a.classNames.join() !== b.classNames.join())
    out.push(`classes ${a.classNames.join(', ')} vs ${b.classNames.join(', ')}`);
  return out;
}

/** An adapted member in words: how many films, when. */
const siteOf = (a: NonNullable<ModelMeta['adaptation']>) =>
  `${a.films.used} films, ${a.date.slice(0, 10)}, fingerprint ${short(a.fingerprint)}`;

/**
 * Members adapted to a site (`cxr adapt`) are refused. Adapted to different sites, or adapted beside unadapted
 * ones, the ensemble would average models tuned to different hospitals; adapted to one site, the ensemble's
 * temperature and thresholds are chosen again on the source's validation films, dropping a prior shift, and the
 * combined folder no longer says it is adapted. Ensembling the source models and adapting the ensemble gives the
 * same members (adaptation re-estimates each member's statistics on the films) with a folder that says so.
 */
function checkAdapted(dirs: string[], metas: ModelMeta[]): void {
  const i = metas.findIndex((m) => m.adaptation);
  if (i < 0) return;
  const a = metas[i].adaptation as NonNullable<ModelMeta['adaptation']>;
  const recipe =
    "combine the source models (each adapted folder's cxr.json names its source under adaptation.source), then " +
    'adapt the ensemble to the site: cxr adapt --model <ensemble> --images <site films> (it adapts every member)';
  const plain = metas.findIndex((m) => !m.adaptation);
  if (plain >= 0) {
    throw new EnsembleRefused(
      `${dirs[i]} is adapted to a site (${siteOf(a)}) and ${dirs[plain]} is not: an ensemble would average a ` +
        `model tuned to that site with one that is not; ${recipe}`,
    );
  }
  const other = metas.findIndex((m) => m.adaptation?.fingerprint !== a.fingerprint);
  if (other >= 0) {
    const b = metas[other].adaptation as NonNullable<ModelMeta['adaptation']>;
    throw new EnsembleRefused(
      `${dirs[i]} and ${dirs[other]} were adapted to different sites' films (${siteOf(a)}; ${siteOf(b)}): an ` +
        `ensemble would average models tuned to different hospitals; ${recipe}`,
    );
  }
  throw new EnsembleRefused(
    `the members are adapted to a site (${siteOf(a)}): the ensemble's temperature and thresholds would be chosen ` +
      "again on the source's validation films and the ensemble would not record the adaptation; " +
      recipe,
  );
}

/** Refuses members that cannot be averaged or calibrated together; returns their metadata. */
export function checkMembers(dirs: string[]): ModelMeta[] {
  if (dirs.length < 2) throw new EnsembleRefused(`an ensemble needs at least 2 members, got ${dirs.length}`);
  for (const d of dirs) {
    if (!fs.existsSync(path.join(d, 'cxr.json')))
      throw new EnsembleRefused(`${d}: not a cxr model folder (no cxr.json there)`);
  }
  // By what the members are, not how they are named: a symlink or a copy of a member is the same member.
  const seen = new Map<string, string>();
  for (const d of dirs) {
    const digest = memberWeightsDigest(d);
    for (const key of [`path:${fs.realpathSync(d)}`, ...(digest ? [`weights:${digest}`] : [])]) {
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        throw new EnsembleRefused(
          `the same member is named twice: ${d} is ${key.startsWith('path') ? '' : 'a copy of '}${earlier}`,
        );
      }
      seen.set(key, d);
    }
  }
  const metas = dirs.map((d) => {
    const m = readMeta(d);
    if (m.members.length) throw new EnsembleRefused(`${d} is itself an ensemble: name its members instead`);
    return m;
  });
  checkAdapted(dirs, metas);
  const [first] = metas;
  metas.forEach((m, i) => {
    const differ = inputDifferences(first, m);
    if (differ.length === 0) return;
    const fix = [
      ...(m.inputSize !== first.inputSize ? [`--input-size ${first.inputSize}`] : []),
      ...(normalizeOf(m) !== normalizeOf(first) ? [`--normalize ${normalizeOf(first)}`] : []),
    ];
    throw new EnsembleRefused(
      `members differ in input: ${dirs[0]} and ${dirs[i]}: ${differ.join('; ')}; ` +
        'members must share input size, preprocessing and classes' +
        (fix.length ? ` (retrain ${dirs[i]} with ${fix.join(' ')})` : ''),
    );
  });
  for (const [i, m] of metas.entries()) {
    const s = recordedSplit(m);
    if (typeof m.data.fingerprint !== 'string' || s.valFraction === undefined || s.seed === undefined) {
      throw new EnsembleRefused(
        `${dirs[i]}: cxr.json does not record its validation split (data fingerprint, valFraction, seed)`,
      );
    }
    if (splitKey(m) !== splitKey(first)) {
      const { what, fix } = splitDifference(first, m);
      throw new EnsembleRefused(
        `${dirs[0]} and ${dirs[i]} were validated on different splits (${what.join('; ')}): ` +
          "the ensemble's temperature and thresholds need one validation split that no member trained on; " +
          `retrain ${dirs[i]} to match ${dirs[0]}: ${fix.join(', ')} ` +
          '(or train the members together: cxr train --seeds A B C --split-seed N)',
      );
    }
  }
  return metas;
}

/** The weight files model.json names (an ensemble's own model.json names none: refused later). */
export function weightFiles(dir: string): string[] {
  return fs.existsSync(path.join(dir, 'model.json')) ? weightFilesOf(readWeightsManifest(dir)) : [];
}

/** sha256 over a member's weight files (two members with equal digests are one model); '' without any. */
function memberWeightsDigest(dir: string): string {
  const files = weightFiles(dir);
  if (!files.length) return '';
  const h = crypto.createHash('sha256');
  for (const f of files) h.update(readModelFile(dir, f));
  return h.digest('hex');
}

/**
 * The data folder an ensemble's shared split is loaded from: `data` (--data), else the one the first member
 * recorded, where it is. Models trained before cxr.json recorded absolute paths hold the path as it was typed,
 * relative to the directory that training ran in: it is tried from this directory and named when not found.
 */
export function membersDataRoot(first: Pick<ModelMeta, 'data'>, data: string | undefined): string {
  if (data !== undefined) return data;
  const recorded = first.data.root;
  const pass = 'pass --data (the folder holding train/)';
  if (typeof recorded !== 'string') throw new EnsembleRefused(`the members record no data folder: ${pass}`);
  if (fs.existsSync(recorded)) return recorded;
  const where = path.isAbsolute(recorded)
    ? recorded
    : `${recorded}, relative to the directory the member was trained in (not found from here: ` +
      `${path.resolve(recorded)})`;
  throw new EnsembleRefused(`the members' recorded data folder is not here (${where}): ${pass}`);
}
