// The pixel limit and its words, without the decoder's imports (sharp): the page's own decoder (web/client,
// "Process on this computer") bundles this to refuse a film over the limit as the server does, in the same words.

// Originals in this data set are at most ~3000×3000 and DICOM radiographs ~4300×4300; 50 MP
// leaves room for those while capping a single decode at tens of megabytes of memory.
export const DEFAULT_MAX_PIXELS = 50_000_000;

/** "image is W×H (N megapixels), over the M-megapixel limit": every reader's words (DICOM's and the page's too). */
export function overPixelLimit(width: number, height: number, maxPixels: number, what = 'image'): string {
  const [size, limit] = megapixels(width * height, maxPixels);
  return `${what} is ${width}×${height} (${size} megapixels), over the ${limit}-megapixel limit`;
}

/** Both counts in megapixels, with as many digits as it takes to tell the size from the limit. */
function megapixels(pixels: number, limit: number): [string, string] {
  const mp = (n: number, digits: number) => String(Number((n / 1e6).toPrecision(digits)));
  let digits = 3;
  while (digits < 12 && mp(pixels, digits) === mp(limit, digits)) digits++;
  return [mp(pixels, digits), mp(limit, digits)];
}
