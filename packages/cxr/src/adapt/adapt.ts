// `cxr adapt`: a trained model adapted to a new hospital from that site's unlabeled films.
// Batch-norm statistics are re-estimated on the films (AdaBN); optionally the thresholds are moved to
// the site's class prior too (adapt/prior.ts). The result is a new, complete model folder; the source
// folder is never touched, so undoing an adaptation is using the old folder again.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadOod, OOD_FILE, saveOod, weightsDigest } from '../explain/ood';
import { cardCommand, PRIOR_WORDS, thresholdMove, writeModelCard } from '../models/card';
import { loadBnReference } from '../models/bn_reference';
import { loadModel, memberDirs, readMeta, saveLayersModel } from '../models/io';
import { writeDirAtomic } from '../models/dir_swap';
import { roundWeightsToFloat16 } from '../models/weights_float16';
import { type Adaptation, type ModelMeta, parseMeta } from '../models/metadata';
import { calibrated, predictAllLogits } from '../models/infer';
import { Predictor } from '../predict/predictor';
import { adaptMembers, type ClassMix, siteShareOf } from './class_mix';
import { filmsFingerprint, readSiteFilms, type SiteFilms } from './films';
import { recentreGate } from './ood_recentre';
import { shiftThreshold, sitePrior } from './prior';

/**
 * Fewest usable films by default. Each batch-norm channel's statistics pool images × positions,
 * so they settle quickly; what 50 films buy is a sample that is not one day's or one machine's.
 */
export const DEFAULT_MIN_IMAGES = 50;
/** More flagged than this fraction of the readable films: the folder is not (mostly) chest films. */
export const MAX_REJECTED_FRACTION = 0.5;
/** Adaptation record and the rejected/unreadable file list, next to cxr.json. */
export const ADAPTATION_REPORT = 'adaptation-report.json';

export interface AdaptOptions {
  modelDir: string;
  imagesDir: string;
  outDir: string;
  prior?: boolean;
  /** Plain AdaBN (the site's own statistics) even where the model carries reference statistics. */
  plain?: boolean;
  /** The site's share of pneumonia films the reference is mixed at (default 'auto': estimated). */
  classMix?: ClassMix;
  minImages?: number;
  batchSize?: number;
  /** Written into the card (the command that made the folder). */
  command?: string;
  log?: (line: string) => void;
}

export interface AdaptResult {
  outDir: string;
  meta: ModelMeta;
  adaptation: Adaptation;
  /** Gate verdict on the site's films after adaptation (null: the model has no OOD gate). */
  gate: { meanShift: number; flagged: number } | null;
  rejected: SiteFilms['rejected'];
  unreadable: SiteFilms['unreadable'];
  /** Every warning the adaptation logged (also in adaptation-report.json). */
  warnings: string[];
}

export class AdaptRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdaptRefused';
  }
}

function checkOut(modelDir: string, outDir: string): void {
  const src = path.resolve(modelDir);
  const out = path.resolve(outDir);
  if (out === src || out.startsWith(src + path.sep)) {
    throw new AdaptRefused(
      `--out ${outDir} is (inside) the source model folder: ` +
        'write the adapted model to a new folder and keep the original',
    );
  }
  if (fs.existsSync(out) && (!fs.statSync(out).isDirectory() || fs.readdirSync(out).length > 0)) {
    throw new AdaptRefused(
      `--out ${outDir} already exists and is not empty: choose a new folder (an earlier adaptation is not overwritten)`,
    );
  }
}

/** The prior the calibration assumed: the validation split's (temperature and thresholds were chosen there). */
export function trainingPrior(meta: ModelMeta): { prior: number; from: string } {
  for (const key of ['validation', 'train'] as const) {
    const c = meta.data[key];
    if (
      c &&
      typeof c.n === 'number' &&
      typeof c.pneumonia === 'number' &&
      c.n > 0 &&
      c.pneumonia > 0 &&
      c.pneumonia < c.n
    ) {
      return { prior: c.pneumonia / c.n, from: `${key} split (${c.pneumonia}/${c.n} pneumonia)` };
    }
  }
  throw new AdaptRefused(
    '--prior: cxr.json records no class counts of its validation or training split, ' +
      'so the prior the model was calibrated under is unknown',
  );
}

function checkFilms(films: SiteFilms, minImages: number, imagesDir: string): void {
  const used = films.files.length;
  // Copies of a used film are readable chest images too (docs/site-adaptation.md: "more than half of the readable
  // images"): flagged files are not deduplicated, so leaving the copies out made a folder exported twice look
  // mostly flagged and refused it.
  const readable = used + films.duplicates.length + films.rejected.length;
  if (readable === 0) {
    throw new AdaptRefused(
      `${imagesDir}: no readable JPEG, PNG or DICOM images (${films.unreadable.length} other files)`,
    );
  }
  if (films.rejected.length / readable > MAX_REJECTED_FRACTION) {
    const example = films.rejected[0];
    throw new AdaptRefused(
      `${imagesDir}: ${films.rejected.length} of ${readable} images do not look like frontal chest X-rays ` +
        `(e.g. ${path.basename(example.file)}: ${example.reason}); refusing to adapt the model to them`,
    );
  }
  if (used < minImages) {
    const copies = films.duplicates.length ? `, ${films.duplicates.length} copies of films counted once` : '';
    throw new AdaptRefused(
      `${imagesDir}: only ${used} usable chest films ` +
        `(${films.rejected.length} flagged, ${films.unreadable.length} unreadable${copies}); ` +
        `adaptation needs at least ${minImages} (--min-images)`,
    );
  }
}

/**
 * A model folder that is itself an adaptation. Relative AdaBN moves each layer's statistics from the source
 * model's by how the site differs from the validation films (bn-reference.json, measured on the source's
 * weights): the adapted folder has neither the source's statistics nor a reference for its own, so adapting it
 * again would silently fall back to plain AdaBN (which moves the scores even on a site like the validation
 * films), or, with a reference re-measured on it, adapt the new site to the first one. An adaptation replaces
 * the earlier one rather than adding to it, so the source model is the one to adapt. After plain AdaBN the
 * statistics are the site's own and re-estimating them is what adapting the source with --plain would give.
 */
function checkReadaptation(modelDir: string, earlier: Adaptation, plain: boolean): void {
  if (plain || !earlier.method.includes('adabn-relative')) return;
  const src = earlier.source;
  const where = typeof earlier.sourceDir === 'string' ? ` (${earlier.sourceDir})` : '';
  throw new AdaptRefused(
    `${modelDir} is already adapted to a site (relative AdaBN on ${earlier.films.used} films, ` +
      `${earlier.date.slice(0, 10)}) from ${src.name} ${src.version}${where}: an adaptation replaces the earlier ` +
      'one, it does not add to it, so adapt that source model to the new films (cxr adapt --model <source> ...); ' +
      'adapting this folder again would compare the films with statistics that are no longer its own ' +
      '(--plain adapts it anyway, with plain AdaBN)',
  );
}

/**
 * The operating points an adaptation starts from: the source's as calibrated on validation. A folder adapted
 * with --prior has its thresholds moved to that earlier site's prior; they are put back (as `thresholdsBefore`
 * recorded them) so that a new prior shift is not added to the old one, and the old shift does not stay behind.
 */
function calibratedOperatingPoints(meta: ModelMeta, log: (line: string) => void): ModelMeta['operatingPoints'] {
  const before = meta.adaptation?.prior?.thresholdsBefore;
  if (!before) return meta.operatingPoints;
  log(
    'note: the thresholds start from the source calibration, before the earlier adaptation moved them to that ' +
      `site's prior (${(100 * (meta.adaptation?.prior?.site ?? 0)).toFixed(1)}% pneumonia)`,
  );
  return Object.fromEntries(
    Object.entries(meta.operatingPoints).map(([k, op]) => [
      k,
      k in before ? { threshold: before[k], sensitivity: null, specificity: null } : op,
    ]),
  );
}

export async function adaptModel(o: AdaptOptions): Promise<AdaptResult> {
  // Every warning the adaptation logs is also kept, for --json and adaptation-report.json.
  const warnings: string[] = [];
  const log = (line: string) => {
    if (line.startsWith('warning: ')) warnings.push(line.slice('warning: '.length));
    o.log?.(line);
  };
  const minImages = o.minImages ?? DEFAULT_MIN_IMAGES;
  if (!Number.isInteger(minImages) || minImages < 2)
    throw new AdaptRefused(`--min-images must be an integer ≥ 2, got ${minImages}`);
  checkOut(o.modelDir, o.outDir);
  const earlier = readMeta(o.modelDir).adaptation;
  if (earlier) checkReadaptation(o.modelDir, earlier, !!o.plain);
  // Before any work: a --prior that cannot be honoured is refused up front.
  const train = o.prior ? trainingPrior(readMeta(o.modelDir)) : null;

  // The source model's own Predictor reads the films: same decode, resize and gate as a prediction.
  const predictor = await Predictor.load(o.modelDir, { warmUp: false });
  let films: SiteFilms;
  const source = predictor.model;
  try {
    for (const n of predictor.notes) log(`note: ${n}`);
    films = await readSiteFilms(predictor, o.imagesDir, {
      onFile: (done, total) => {
        if (done === total || done % 100 === 0) log(`screened ${done}/${total} files`);
      },
    });
  } finally {
    predictor.dispose();
  }
  log(
    `${films.files.length} films used, ${films.rejected.length} flagged by the gate, ` +
      `${films.unreadable.length} unreadable` +
      (films.duplicates.length ? `, ${films.duplicates.length} copies of films already used` : ''),
  );
  checkFilms(films, minImages, o.imagesDir);

  const loaded = await loadModel(o.modelDir);
  const { meta } = loaded;
  try {
    const n = films.files.length;
    const storage = meta.ensemble?.weights === 'float16' ? 'float16' : 'float32';
    const reference = o.plain ? null : loadBnReference(o.modelDir, memberDirs(o.modelDir, meta));
    const relative = reference?.members != null;
    if (reference && !reference.members && meta.adaptation) {
      // Only a plain adaptation gets here (checkReadaptation): the statistics are re-estimated from scratch.
      log(
        `note: ${o.modelDir} is already adapted (plain AdaBN, ${meta.adaptation.date.slice(0, 10)}): this ` +
          'adaptation replaces that one, plain AdaBN on these films, as adapting the source model with --plain would',
      );
    } else if (reference && !reference.members) {
      log(
        `note: no usable reference statistics (${reference.problem}): plain AdaBN, which moves the scores of a ` +
          "model trained on augmented films even on a site like its own; 'cxr adapt-reference' writes them",
      );
    }
    log(relative ? "relative AdaBN: the site's films against the model's validation films" : 'plain AdaBN');
    const { bnLayers, classMix } = await adaptMembers(
      loaded.members,
      { pixels: films.pixels, n, size: films.size },
      { reference, classMix: o.classMix ?? 'auto', meta, batchSize: o.batchSize, log },
    );
    log(`${loaded.members.length} member(s): ${bnLayers} batch-norm layers re-estimated on ${n} films`);
    // A share given (or 'first') that the batch-norm step had no class-split reference to weigh was dropped
    // without a word; a given share is still the site's share for --prior (docs/site-adaptation.md, step 3).
    const given = typeof o.classMix === 'number' ? o.classMix : undefined;
    if (o.classMix !== undefined && o.classMix !== 'auto' && o.classMix !== 'reference' && classMix === null) {
      const why = reference?.members ? 'the reference statistics do not keep the classes apart' : 'plain AdaBN';
      log(
        `note: --class-mix ${o.classMix} does not change the batch-norm adaptation (${why}; it weighs the ` +
          `reference statistics only)` +
          (given !== undefined && train ? `; it is the site's share for --prior` : ''),
      );
    }
    // A half-precision source stays half precision (as its cxr.json and card say), rounded before anything
    // below (prior, gate) is computed on it.
    if (storage === 'float16') for (const m of loaded.members) roundWeightsToFloat16(m);
    if (bnLayers === 0)
      throw new AdaptRefused(`${o.modelDir}: the model has no batch-norm layers, so there are no statistics to adapt`);

    const adaptation: Adaptation = {
      method: [relative ? 'adabn-relative' : 'adabn'],
      films: {
        used: n,
        rejected: films.rejected.length,
        unreadable: films.unreadable.length,
        ...(films.duplicates.length ? { duplicates: films.duplicates.length } : {}),
      },
      fingerprint: filmsFingerprint(films.sha256),
      date: new Date().toISOString(),
      source: { name: source.name, version: source.version, sha256: source.sha256 },
      // Where the source folder was: a later adaptation starts from it (checkReadaptation names it).
      sourceDir: path.resolve(o.modelDir),
      // The adaptation this one replaces, when the source folder was adapted itself.
      ...(meta.adaptation ? { previous: meta.adaptation } : {}),
      bnLayers,
      ...(classMix ? { classMix } : {}),
    };
    const calibratedOps = calibratedOperatingPoints(meta, log);
    let operatingPoints = calibratedOps;
    if (train) {
      // The share the adaptation itself settled on (or was given) when it mixed the reference at one, or the
      // share given where it had no class-split reference to mix; else estimated from the adapted model's scores.
      const mixed = siteShareOf(classMix) ?? given;
      const probs =
        mixed === undefined
          ? calibrated(
              await predictAllLogits(loaded.members, films.pixels, n, films.size, {
                tta: meta.tta,
                batchSize: o.batchSize,
              }),
              meta.temperature,
              meta.logitBias,
            )
          : [];
      const est = sitePrior(probs, train.prior, { classMix: mixed, balanced: meta.operatingPoints.balanced });
      if (!est.converged) log(`warning: the prior estimate did not converge in ${est.iterations} iterations`);
      const { shift } = est;
      // Sensitivity/specificity were measured at the old thresholds on validation: unknown at the new ones.
      operatingPoints = Object.fromEntries(
        Object.entries(calibratedOps).map(([k, op]) => [
          k,
          { threshold: shiftThreshold(op.threshold, shift), sensitivity: null, specificity: null },
        ]),
      );
      adaptation.method.push('prior');
      adaptation.prior = {
        train: train.prior,
        trainFrom: train.from,
        site: est.prior,
        from: est.from,
        logitShift: shift,
        ...(est.iterations === undefined ? {} : { iterations: est.iterations }),
        thresholdsBefore: Object.fromEntries(Object.entries(calibratedOps).map(([k, op]) => [k, op.threshold])),
      };
      log(
        `class prior: ${(100 * train.prior).toFixed(1)}% pneumonia at calibration, ` +
          `${(100 * est.prior).toFixed(1)}% on the site, ${PRIOR_WORDS[est.from]}: thresholds moved ` +
          thresholdMove(shift),
      );
    }
    const adapted: ModelMeta = parseMeta(
      {
        ...meta,
        version: `${meta.version}-adapted-${adaptation.date.replace(/[-:]/g, '').slice(0, 15)}`,
        operatingPoints,
        adaptation,
        createdAt: adaptation.date,
      },
      'adapted cxr.json',
    );

    let gate: AdaptResult['gate'] = null;
    const dirs = meta.members.length ? meta.members : ['.'];
    await writeDirAtomic(o.outDir, async (tmp) => {
      for (const [k, m] of loaded.members.entries()) await saveLayersModel(m, path.join(tmp, dirs[k]), storage);
      const srcGate = loadOod(o.modelDir, path.join(o.modelDir, dirs[0]));
      if (srcGate.model) {
        const g = srcGate.model;
        const r = await recentreGate(
          g,
          loaded.members[g.member],
          films.pixels,
          n,
          films.size,
          weightsDigest(path.join(tmp, dirs[0])),
          { batchSize: o.batchSize, recentre: !relative },
        );
        saveOod(tmp, r.gate);
        gate = { meanShift: r.meanShift, flagged: r.flagged };
        log(
          (relative
            ? `OOD gate: the source model's (the site's mean feature is ${r.meanShift.toFixed(2)} from its mean); `
            : `OOD gate: mean refitted on the site's films (moved by ${r.meanShift.toFixed(2)}); `) +
            `${r.flagged} of ${n} films above its threshold now`,
        );
      } else if (fs.existsSync(path.join(o.modelDir, OOD_FILE))) {
        log(`note: ${srcGate.problem}: the adapted model has no OOD gate either`);
      }
      fs.writeFileSync(path.join(tmp, 'cxr.json'), JSON.stringify(adapted, null, 2) + '\n');
      const card = path.join(o.modelDir, 'MODEL_CARD.md');
      // The source card first, so that its hand-written section is kept.
      if (fs.existsSync(card)) fs.copyFileSync(card, path.join(tmp, 'MODEL_CARD.md'));
      writeModelCard(tmp, adapted, fs.existsSync(card) ? cardCommand(o.modelDir) : o.command);
      const rel = (f: string) => path.relative(o.imagesDir, f);
      fs.writeFileSync(
        path.join(tmp, ADAPTATION_REPORT),
        JSON.stringify(
          {
            adaptation,
            command: o.command ?? null,
            gate,
            // Every warning the adaptation logged (a given --class-mix far from the films' estimate, a search or
            // prior estimate that did not settle).
            warnings,
            rejected: films.rejected.map((r) => ({ file: rel(r.file), reason: r.reason })),
            unreadable: films.unreadable.map((r) => ({ file: rel(r.file), reason: r.reason })),
            duplicates: films.duplicates.map((d) => ({ file: rel(d.file), of: rel(d.of) })),
          },
          null,
          2,
        ) + '\n',
      );
    });
    return {
      outDir: o.outDir,
      meta: adapted,
      adaptation,
      gate,
      rejected: films.rejected,
      unreadable: films.unreadable,
      warnings,
    };
  } finally {
    for (const m of loaded.members) m.dispose();
  }
}
