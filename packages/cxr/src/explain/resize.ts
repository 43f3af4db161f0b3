// Bilinear resizing of a row-major plane, pixel centres aligned and edges clamped: the heat map's
// upsampling (gradcam.ts) and the film-layout check's resampling (film_layout.ts, which the browser
// bundle also runs, hence a module without dependencies).
/** Bilinear resize of a map to height × width (pixel centres aligned, as image resizers do). */
export function resizeMap(src: Float32Array, sh: number, sw: number, height: number, width: number): Float32Array {
  const out = new Float32Array(height * width);
  const sy = sh / height;
  const sx = sw / width;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(sh - 1, Math.max(0, (y + 0.5) * sy - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(sh - 1, y0 + 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(sw - 1, Math.max(0, (x + 0.5) * sx - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(sw - 1, x0 + 1);
      const wx = fx - x0;
      const top = src[y0 * sw + x0] * (1 - wx) + src[y0 * sw + x1] * wx;
      const bottom = src[y1 * sw + x0] * (1 - wx) + src[y1 * sw + x1] * wx;
      out[y * width + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}
