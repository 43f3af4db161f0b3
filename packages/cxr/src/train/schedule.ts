// Learning-rate schedules, evaluated per optimisation step (cosine, one-cycle) or per epoch
// (reduce-on-plateau on validation AUC).
import type { Recipe } from './recipe';

export interface Schedule {
  /** LR for a step, given the global step index and the steps in one epoch. */
  lr(step: number, stepsPerEpoch: number): number;
  /** Called after each validation; returns true if the LR was reduced. */
  onValidation(valAuc: number): boolean;
  state(): Record<string, number>;
}

export function makeSchedule(recipe: Recipe, saved?: Record<string, number>): Schedule {
  const base = recipe.lr;
  const total = recipe.epochs;
  const warm = recipe.warmupEpochs;
  let plateauLr = saved?.plateauLr ?? base;
  let best = saved?.best ?? -Infinity;
  let bad = saved?.bad ?? 0;
  const warmup = (e: number) => (warm > 0 && e < warm ? (e + 1e-3) / warm : 1);
  return {
    lr(step, stepsPerEpoch) {
      const e = step / stepsPerEpoch; // fractional epoch
      switch (recipe.schedule) {
        case 'constant':
          return base * warmup(e);
        case 'plateau':
          return plateauLr * warmup(e);
        case 'cosine': {
          const t = Math.min(1, Math.max(0, (e - warm) / Math.max(1e-9, total - warm)));
          return base * warmup(e) * (0.02 + 0.98 * 0.5 * (1 + Math.cos(Math.PI * t)));
        }
        case 'onecycle': {
          // Linear ramp to the peak over the first 30 %, cosine down to 1/100 of the peak.
          const t = e / total;
          if (t < 0.3) return base * (0.1 + 0.9 * (t / 0.3));
          return base * (0.01 + 0.99 * 0.5 * (1 + Math.cos((Math.PI * (t - 0.3)) / 0.7)));
        }
      }
    },
    onValidation(auc) {
      if (recipe.schedule !== 'plateau') return false;
      if (auc > best + 1e-4) {
        best = auc;
        bad = 0;
        return false;
      }
      if (++bad >= 2) {
        plateauLr = Math.max(plateauLr * 0.3, 1e-6);
        bad = 0;
        return true;
      }
      return false;
    },
    state: () => ({ plateauLr, best, bad }),
  };
}
