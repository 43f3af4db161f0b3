// A perceptually uniform colour map for heat maps: inferno (black -> purple -> orange -> pale
// yellow), so that brightness alone orders the values and the map stays readable in grayscale
// print and for colour-blind readers. Stored as 9 evenly spaced stops sampled from the published
// map and interpolated linearly to a 256-entry table; close enough for display.
const INFERNO_STOPS: ReadonlyArray<readonly [number, number, number]> = [
  [0, 0, 4],
  [31, 12, 72],
  [85, 15, 109],
  [136, 34, 106],
  [186, 54, 85],
  [227, 89, 51],
  [249, 140, 10],
  [249, 201, 50],
  [252, 255, 164],
];

function buildLut(stops: ReadonlyArray<readonly [number, number, number]>): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  const segments = stops.length - 1;
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * segments;
    const k = Math.min(segments - 1, Math.floor(t));
    const f = t - k;
    for (let c = 0; c < 3; c++) lut[3 * i + c] = Math.round(stops[k][c] * (1 - f) + stops[k + 1][c] * f);
  }
  return lut;
}

/** 256 RGB triples, index = value in [0, 255]. */
/**
 * Heat map values at or under this (after scaling by the overlay's strength) are not coloured, so the X-ray shows
 * through (gradcam.ts renderOverlay's default floor). Here, free of sharp and tfjs, so the page can say it too.
 */
export const HEATMAP_FLOOR = 0.2;

export const INFERNO: Uint8Array = buildLut(INFERNO_STOPS);
