// Where the class-mix estimate settles. Adapting against the reference mixed at a share s and then
// estimating the films' share gives a map f(s). At the site's true share the adapted films read back
// about that share; a share set too low reads back higher, and one set too high (but not far) lower:
// the true share is a fixed point that attracts (f crosses the diagonal from above). But a share set far
// too high makes the films look like pneumonia films, which raises the estimate: a second attracting
// fixed point near "all pneumonia", separated from the first by one that repels. Measured on the shipped
// model (round 14, docs/site-adaptation.md): Kaggle's 16 val films (half pneumonia) read 49% back when
// adapted at 40% or 50%, 69% at 60% and 88% at 70% or 80%; iterating from the first estimate (62%,
// raised by the films' acquisition) ran away towards the second. So, unless the first steps settle close
// by, the map is scanned over a grid, and of the shares where it crosses the diagonal from above, the one
// nearest the estimate before adaptation is taken and refined, but only at or below that estimate. A
// change that adaptation does not undo can read as pneumonia at every share (the shipped model's
// validation films under strong noise, 74.5% pneumonia: 30% read back 55%, 70% 78%, 90% 91%), and then
// the only fixed point is the runaway one. In the maps of round 14 every crossing the scan found below the
// first estimate was near the site's share, and every one above it was the runaway. Without one at or below,
// the first estimate is kept, and the search says it did not settle.

/** Shares the reference is mixed at to scan the map, when the first two estimates do not settle. */
export const MIX_GRID = [0.1, 0.3, 0.5, 0.7, 0.9] as const;
/** Further evaluations inside the chosen bracket. */
export const MIX_REFINEMENTS = 2;
/** A share whose adapted films read back within this of it is a fixed point. */
export const MIX_TOLERANCE = 0.01;
/** Shares stay inside these bounds (a site of one class only is not adapted to as if it were). */
export const SHARE_FLOOR = 0.01;
export const clampShare = (x: number) => Math.min(1 - SHARE_FLOOR, Math.max(SHARE_FLOOR, x));

export interface MixPoint {
  /** Share the reference was mixed at. */
  at: number;
  /** Share estimated from the films after adapting at it. */
  estimate: number;
}

export interface MixSearch {
  share: number;
  /** Every adaptation tried, in order. */
  points: MixPoint[];
  /**
   * 'first': adapting at the estimate before adaptation read it back; 'crossing': a fixed point found near it
   * or by the scan; 'unsettled': none at or below it, so the first estimate is kept.
   */
  how: 'first' | 'crossing' | 'unsettled';
}

const gap = (p: MixPoint) => p.estimate - p.at;
/**
 * Adapting at p reads p back. At the floor, reading back the floor or less counts too: the estimate cannot
 * fall lower, so a site of normal films only (every share reads back the floor) has its fixed point there.
 */
const settled = (p: MixPoint) => Math.abs(gap(p)) < MIX_TOLERANCE || (p.at <= SHARE_FLOOR && gap(p) < MIX_TOLERANCE);

interface Bracket {
  /** Ends with gap(lo) > 0 >= gap(hi); an end at the share bounds is unmeasured (null). */
  lo: MixPoint | null;
  hi: MixPoint | null;
}

/** The root of the gap inside a bracket: interpolated between measured ends, else the midpoint. */
function guess(b: Bracket): number {
  if (b.lo && b.hi) return b.lo.at + (gap(b.lo) * (b.hi.at - b.lo.at)) / (gap(b.lo) - gap(b.hi));
  return ((b.lo?.at ?? SHARE_FLOOR) + (b.hi?.at ?? 1 - SHARE_FLOOR)) / 2;
}

/**
 * Intervals between consecutive measured shares where the estimate crosses the diagonal from above. There is
 * always one: the estimate is at least the floor below the lowest share and at most the ceiling above the highest.
 */
function brackets(points: readonly MixPoint[]): Bracket[] {
  const sorted = [...points].sort((a, b) => a.at - b.at);
  const out: Bracket[] = [];
  // Below the lowest share the estimate cannot be lower than the floor, above the highest not higher than the ceiling.
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (gap(first) <= 0 && first.at > SHARE_FLOOR) out.push({ lo: null, hi: first });
  // A share measured at the floor that reads back the floor is itself the crossing (guessed at the floor).
  if (first.at <= SHARE_FLOOR && settled(first)) out.push({ lo: null, hi: first });
  for (let i = 0; i + 1 < sorted.length; i++) {
    const [a, b] = [sorted[i], sorted[i + 1]];
    if (gap(a) > 0 && gap(b) <= 0) out.push({ lo: a, hi: b });
  }
  if (gap(last) > 0 && last.at < 1 - SHARE_FLOOR) out.push({ lo: last, hi: null });
  return out;
}

/**
 * The share to adapt at: the attracting fixed point of the estimate nearest `first` (the estimate before
 * any adaptation). `estimateAfter(s)` adapts at s (from the source model) and estimates the share again.
 * Most sites need one or two adaptations: `first` itself when adapting there reads it back, else the next
 * estimate when the two bracket a fixed point closer than the scan could resolve (half its spacing). Only
 * when they do not (the estimate runs away, or moves far) is the map scanned over MIX_GRID, and the bracket
 * nearest `first` at or below it refined MIX_REFINEMENTS times; without one, `first` is kept ('unsettled').
 */
export async function settleShare(
  first: number,
  estimateAfter: (share: number) => Promise<number>,
): Promise<MixSearch> {
  const points: MixPoint[] = [];
  const measure = async (at: number) => {
    const p = { at, estimate: await estimateAfter(at) };
    points.push(p);
    return p;
  };
  const refine = async (b: Bracket): Promise<MixSearch> => {
    for (let k = 0; k < MIX_REFINEMENTS; k++) {
      const p = await measure(clampShare(guess(b)));
      if (settled(p)) return { share: p.at, points, how: 'crossing' };
      if (gap(p) > 0) b.lo = p;
      else b.hi = p;
    }
    return { share: clampShare(guess(b)), points, how: 'crossing' };
  };
  const p0 = await measure(first);
  if (settled(p0)) return { share: first, points, how: 'first' };
  const p1 = await measure(clampShare(p0.estimate));
  const spacing = MIX_GRID[1] - MIX_GRID[0];
  if (Math.abs(p1.at - p0.at) <= spacing / 2) {
    if (settled(p1)) return { share: p1.at, points, how: 'crossing' };
    const local = brackets([p0, p1]).filter((b) => b.lo && b.hi);
    if (local.length === 1) return refine(local[0]);
  }
  for (const at of MIX_GRID) await measure(at);
  // The crossing nearest the first estimate and not above it (by its guessed root).
  const [chosen] = brackets(points)
    .filter((b) => guess(b) <= first + MIX_TOLERANCE)
    .sort((a, b) => Math.abs(guess(a) - first) - Math.abs(guess(b) - first));
  if (!chosen) return { share: first, points, how: 'unsettled' };
  // An end measured close enough to the diagonal needs no refinement.
  const end = [chosen.hi, chosen.lo].find((p) => p && settled(p));
  if (end) return { share: end.at, points, how: 'crossing' };
  return refine(chosen);
}
