// What the operating point choice says about each point: its measured sensitivity and specificity on
// validation (the model info), and a comparison only where the numbers differ as shown. A fixed
// "fewer false alarms" was false for a model whose points share their specificity.
import type { ModelInfo } from './api';
import { distinctOperatingPoints, percent } from './dom';

type Measure = 'sensitivity' | 'specificity';

/** What a higher value of each measure means for the reader. */
const MEANS: Record<Measure, string> = { sensitivity: 'fewer missed cases', specificity: 'fewer false alarms' };

/** The value as shown (a tenth of a percent): two points that read the same are not told apart. */
function shown(v: number | null | undefined): number | null {
  return v == null ? null : Math.round(v * 1000);
}

/**
 * The hint for the choice `names` (one threshold, maybe several names): "sensitivity 99.1 %, specificity
 * 97.0 % on validation; higher sensitivity: fewer missed cases". Null when the model has no measures for it.
 */
export function operatingPointHint(info: ModelInfo, names: readonly string[]): string | null {
  const mine = info.operatingPoints[names[0]];
  const others = distinctOperatingPoints(info)
    .filter((d) => !d.names.includes(names[0]))
    .map((d) => info.operatingPoints[d.names[0]]);
  const numbers: string[] = [];
  const better: string[] = [];
  for (const m of ['sensitivity', 'specificity'] as const) {
    const v = mine[m];
    if (v == null) continue;
    numbers.push(`${m} ${percent(v)}`);
    // A claim only against every other choice, each with a measure that reads lower.
    const beats = others.length > 0 && others.every((o) => shown(o[m]) !== null && shown(o[m])! < shown(v)!);
    if (beats) better.push(`${others.length > 1 ? 'highest' : 'higher'} ${m}: ${MEANS[m]}`);
  }
  if (!numbers.length) return null;
  const measured = `${numbers.join(', ')} on validation`;
  return better.length ? `${measured}; ${better.join('; ')}` : measured;
}
