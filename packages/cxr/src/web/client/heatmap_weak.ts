// What a result card says of a heat map with little or no colour. A positive film at 18 % had "Show heat map"
// ticked, its legend and opacity slider shown, and no colour at all on the film: an empty overlay reads as
// "nothing found there", when it only means the evidence was weak.
import { HEATMAP_FLOOR } from '../../explain/colormap';
import { percent } from './dom';

/**
 * The heat map's colours are scaled by the answer's probability (predict/predictor.ts gives renderOverlay
 * `strength: probability`), and a map value times that under renderOverlay's floor of 0.2 (explain/gradcam.ts) is
 * not coloured: a film at 18 % has a map with no colour at all, though "Show heat map" is on and its legend
 * shown. The floor is the overlay's own (explain/colormap.ts, free of sharp).
 */
/** Under this probability the strongest colour is drawn at under two fifths of full strength: faint. */
const HEATMAP_FAINT_BELOW = 0.5;

/** What the card says of a heat map made at `probability`: nothing, or why it shows little or no colour. */
export function heatmapWeakness(probability: number): string | null {
  if (!(probability < HEATMAP_FAINT_BELOW)) return null;
  const p = percent(probability);
  if (probability <= HEATMAP_FLOOR)
    return (
      `No colour on this heat map: its colours are scaled by the probability of pneumonia (${p}), and under ` +
      `${percent(HEATMAP_FLOOR, 0)} none are drawn. Weak evidence: the map shows nothing to look at.`
    );
  return (
    `Faint heat map: its colours are scaled by the probability of pneumonia (${p}), so weak evidence shows little ` +
    'colour. Read the film, not the colours.'
  );
}
