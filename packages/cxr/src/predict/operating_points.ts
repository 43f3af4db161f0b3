// Operating points as a choice for people: two names with one threshold (e.g. screening and
// balanced on a model where both land on the same validation threshold) are one choice, since a
// switch between them would change nothing. No Node imports: the web page bundles this module.
export interface DistinctPoint {
  /** Operating points with this threshold, the model's default first. */
  names: string[];
  threshold: number;
}

/**
 * The model's operating points grouped by threshold: two names for one threshold are one choice
 * (a switch between them would change nothing), in the model's order.
 */
export function distinctOperatingPoints(info: {
  operatingPoints: Record<string, { threshold: number }>;
  defaultOperatingPoint: string;
}): DistinctPoint[] {
  const out: DistinctPoint[] = [];
  for (const [name, op] of Object.entries(info.operatingPoints)) {
    const same = out.find((d) => Math.abs(d.threshold - op.threshold) < 1e-9);
    if (!same) out.push({ names: [name], threshold: op.threshold });
    else if (name === info.defaultOperatingPoint) same.names.unshift(name);
    else same.names.push(name);
  }
  return out;
}
