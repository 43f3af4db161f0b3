// How a model's screening and balanced operating points were chosen, read from the rules its cxr.json records
// (`rule` on each point): one reading for every text that states them, the model card (models/card.ts) and the
// report's glossary (report/write_report.ts). The card said "≥ 99%" of models chosen at 95%, and the glossary had
// its own reading, which said 95% of a model whose screening point had taken balanced's threshold.

/**
 * Screening's target sensitivity on validation. It must be distinctly more sensitive than the
 * balanced point: at 0.95 it met Youden's point on the shipped model, and the two coincided.
 */
export const SCREENING_SENSITIVITY = 0.99;

/**
 * Screening's target sensitivity until 2026-12-02, that of points whose cxr.json records no rule (rules were
 * recorded from three hours after the target became 99%; no committed cxr.json holds points of those hours).
 */
export const SCREENING_SENSITIVITY_BEFORE_RULES = 0.95;

/** The balanced rule of points chosen before rules were recorded: Youden's J at its maximum. */
const BALANCED_RULE_BEFORE_RULES = 'youden';

export interface OperatingPointRules {
  /** The share of pneumonia the screening point had to catch on validation (0.99 for 99%). */
  screeningSensitivity: number;
  /** The balanced point's rule as recorded ('youden', 'youden-plateau-middle'). */
  balancedRule: string;
}

/** The rule cxr.json records for point `name` (points may be bare numbers in old files, which record none). */
function recordedRule(points: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const point = points[name];
  const rule = typeof point === 'object' && point !== null ? (point as { rule?: unknown }).rule : undefined;
  return typeof rule === 'string' ? rule : undefined;
}

/** The rules the model's recorded operating points (cxr.json `operatingPoints`) were chosen by. */
export function readOperatingPointRules(points: Readonly<Record<string, unknown>>): OperatingPointRules {
  const balanced = recordedRule(points, 'balanced');
  const screening = recordedRule(points, 'screening');
  if (balanced === undefined && screening === undefined)
    return { screeningSensitivity: SCREENING_SENSITIVITY_BEFORE_RULES, balancedRule: BALANCED_RULE_BEFORE_RULES };
  const target = screening?.match(/^sensitivity>=([0-9.]+)$/);
  return {
    // A screening point recorded with balanced's rule took balanced's threshold, which already caught the target's
    // share; every model that records rules was made at today's target.
    screeningSensitivity: target ? Number(target[1]) : SCREENING_SENSITIVITY,
    balancedRule: balanced ?? BALANCED_RULE_BEFORE_RULES,
  };
}

/** A share as the texts write it: 0.99 is "99%", 0.975 "97.5%". */
export const sharePercent = (share: number) => `${+(100 * share).toFixed(2)}%`;
