// `cxr train --seeds 42 7 1`: one recipe trained once per seed on one shared patient split, then the
// runs combined by `cxr ensemble` into --out. One command for what the shipped model is (docs/generalisation.md:
// single runs differ by seed more than validation shows, so the shipped model averages several).
//
// Only the first member fits the not-a-chest-X-ray gate: the ensemble's gate reads the first member's
// features and copies its ood.json, so fitting one per member would cost minutes (about two per member
// here) for files nothing reads. A finished member is kept on a rerun, an interrupted one resumes with
// --resume, so a long ensemble can be stopped and continued like a single run. With --soup the members'
// weights are averaged into one model instead (train/soup.ts), which fits its own gate, so no member fits one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelMeta } from '../models/metadata';
import { recoverCheckpoints } from './checkpoint';
import { buildEnsemble } from './ensemble';
import { buildSoup } from './soup';
import { Recipe } from './recipe';
import { isFinished, type RunOptions, resolveRecipe, runTraining } from './run';

export interface SeedEnsembleOptions extends RunOptions {
  /** One member per seed (initialisation, order and augmentation); at least two, all different. */
  seeds: number[];
  /**
   * Where the members are trained (default: `<out>-members`); each in `<base>-s<seed>`, `<base>` being the recipe
   * named (recipeName), else `name`, else the name of the `out` folder.
   */
  membersDir?: string;
  /** Average the members' weights into one model (`cxr ensemble --soup`) instead of their logits. */
  soup?: boolean;
}

export interface SeedEnsembleResult {
  meta: ModelMeta;
  members: { dir: string; seed: number; seconds: number; trained: boolean }[];
  /** Wall-clock seconds of the whole command: members, gate and ensemble. */
  seconds: number;
}

export async function trainSeedEnsemble(o: SeedEnsembleOptions): Promise<SeedEnsembleResult> {
  const start = Date.now();
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  if (o.seeds.length < 2) throw new Error(`--seeds needs at least 2 seeds for an ensemble, got ${o.seeds.length}`);
  if (new Set(o.seeds).size !== o.seeds.length) throw new Error(`--seeds names a seed twice: ${o.seeds.join(' ')}`);
  if (o.overrides?.seed !== undefined) throw new Error('--seed and --seeds together: give the seeds with --seeds');
  const out = path.resolve(o.out);
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0)
    throw new Error(`--out ${o.out} already exists and is not empty: the ensemble needs a new folder`);
  const base = memberBase(o);
  // Every member validates on the same films, or the ensemble could not be calibrated (ensemble.ts).
  const splitSeed = o.overrides?.splitSeed ?? o.seeds[0];
  const members: SeedEnsembleResult['members'] = [];
  for (const [i, seed] of o.seeds.entries()) {
    const dir = memberDir(o, seed);
    if (isFinished(dir)) {
      // Kept only if it ran this very recipe: a member trained with other options under the same name is not this one.
      const asked = JSON.stringify(resolveRecipe(o.recipeName, { ...o.overrides, seed, splitSeed }));
      const ran = JSON.stringify(Recipe.parse(JSON.parse(fs.readFileSync(path.join(dir, 'recipe.json'), 'utf8'))));
      if (asked !== ran)
        throw new Error(
          `${dir} was trained with another recipe than this command asks for (${ran} vs ${asked}): ` +
            'choose another --members-dir, or remove that member',
        );
      log(`member ${i + 1} of ${o.seeds.length} (seed ${seed}) already trained in ${dir}: kept`);
      members.push({ dir, seed, seconds: 0, trained: false });
      continue;
    }
    log(`member ${i + 1} of ${o.seeds.length}: seed ${seed}, split seed ${splitSeed}, in ${dir}`);
    recoverCheckpoints(dir); // before asking whether it has a checkpoint to resume
    const r = await runTraining({
      ...o,
      out: dir,
      name: `${base}-s${seed}`,
      overrides: { ...o.overrides, seed, splitSeed },
      resume: o.resume === true && fs.existsSync(path.join(dir, 'checkpoints', 'last')),
      gate: i === 0 && o.gate !== false && o.soup !== true,
      noGateReason: memberGateSkipped(o, i),
    });
    members.push({ dir, seed, seconds: r.seconds, trained: true });
  }
  const meta = await (o.soup ? buildSoup : buildEnsemble)({
    members: members.map((m) => m.dir),
    outDir: out,
    name: o.name ?? `${base}-${o.soup ? 'soup' : 'ens'}${o.seeds.length}`,
    data: o.data,
    command: o.command,
    log,
    gate: o.gate !== false,
  });
  return { meta, members, seconds: (Date.now() - start) / 1000 };
}

type MemberNaming = Pick<SeedEnsembleOptions, 'out' | 'membersDir' | 'recipeName' | 'name'>;

/**
 * Members are named after --recipe where one is given (`<recipe>-s<seed>`, as `cxr experiments shift` names
 * its runs), else after --name or the --out folder; the ensemble after --name.
 */
const memberBase = (o: MemberNaming) => o.recipeName ?? o.name ?? path.basename(path.resolve(o.out));

/** The folder member `seed` trains in: `<membersDir>/<base>-s<seed>`, membersDir by default `<out>-members`. */
function memberDir(o: MemberNaming, seed: number): string {
  const membersDir = path.resolve(o.membersDir ?? `${path.resolve(o.out)}-members`);
  return path.join(membersDir, `${memberBase(o)}-s${seed}`);
}

/**
 * The member an ensemble was training when it stopped, for the line Ctrl-C or SIGTERM leaves (cli/train.ts): the
 * first not finished, in --seeds order, the order they train in (a finished one is kept by --resume). Null when
 * every member is finished: the ensemble stopped while it combined them.
 */
export function unfinishedMember(
  o: MemberNaming & { seeds: number[] },
): { number: number; seed: number; dir: string } | null {
  for (const [i, seed] of o.seeds.entries()) {
    const dir = memberDir(o, seed);
    if (!isFinished(dir)) return { number: i + 1, seed, dir };
  }
  return null;
}

/** Why member i fits no gate, for the member's log line (undefined: it fits one, the first of an ensemble). */
function memberGateSkipped(o: SeedEnsembleOptions, i: number): string | undefined {
  // No member and not the combined model: the combined model's line says how to fit one later.
  if (o.gate === false) return '--no-gate';
  if (o.soup) return 'a member of a soup: the soup fits its own gate on the averaged weights';
  if (i > 0) return "not the first member: the ensemble's gate is fitted on the first member's features";
  return undefined;
}
