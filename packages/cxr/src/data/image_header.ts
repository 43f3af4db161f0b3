// Header checks for JPEG and PNG variants that the decoder (libvips with an 8-bit libjpeg) cannot read as the
// film a viewer shows. Without them a 12-bit or lossless JPEG was refused as "corrupt", which tells the sender the
// file is damaged and a resend might help, and an animated PNG was read as its first (default) image only.
// Only headers are read: these run before any pixel is decoded.

/** Start-of-frame markers and the coding process each names (ITU T.81 table B.1). */
const SOF_PROCESS: Readonly<Record<number, string>> = {
  192: 'baseline',
  193: 'extended sequential',
  194: 'progressive',
  195: 'lossless',
  197: 'hierarchical sequential',
  198: 'hierarchical progressive',
  199: 'hierarchical lossless',
  201: 'arithmetic sequential',
  202: 'arithmetic progressive',
  203: 'arithmetic lossless',
  205: 'arithmetic hierarchical sequential',
  206: 'arithmetic hierarchical progressive',
  207: 'arithmetic hierarchical lossless',
};
/** The processes libjpeg decodes (arithmetic coding included), at 8 bits a sample. */
const READABLE = new Set([0xc0, 0xc1, 0xc2, 0xc9, 0xca]);
const refuseJpeg = (what: string) =>
  `${what} JPEG is not supported: only 8-bit baseline, progressive or arithmetic-coded JPEGs are read ` +
  '(export the film as PNG)';

/**
 * Why a JPEG's frame header cannot be read (sample precision other than 8 bits, a lossless or hierarchical
 * process), or undefined when it can or when no frame header is found (the decoder then names the damage).
 */
export function jpegUnsupported(buf: Uint8Array): string | undefined {
  let i = 2;
  while (i + 4 <= buf.length) {
    if (buf[i] !== 0xff) return undefined; // not at a marker: damaged, for the decoder to report
    const marker = buf[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2; // markers without a length
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return undefined; // scan or end before any frame header
    if (marker === 0xde) return refuseJpeg('hierarchical');
    const process = SOF_PROCESS[marker];
    if (process !== undefined) {
      const bits = buf[i + 4];
      if (bits !== undefined && bits !== 8) return refuseJpeg(`${bits}-bit`);
      if (!READABLE.has(marker)) return refuseJpeg(process);
      return undefined;
    }
    i += 2 + ((buf[i + 2] << 8) | buf[i + 3]);
  }
  return undefined;
}

/**
 * Why a PNG cannot be read as one film: an animated PNG (APNG) with more than one frame, or whose frames do not
 * include the default image. A viewer plays the frames; the decoder reads only the default image, so which
 * picture is the film is not known. Chunks are walked up to the first IDAT (acTL must come before it).
 */
export function pngUnsupported(buf: Uint8Array): string | undefined {
  let i = 8;
  let frames: number | undefined;
  let defaultIsFrame = false;
  while (i + 8 <= buf.length) {
    const len = ((buf[i] << 24) >>> 0) + ((buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3]);
    const type = String.fromCharCode(buf[i + 4], buf[i + 5], buf[i + 6], buf[i + 7]);
    if (type === 'IDAT') break;
    if (type === 'acTL' && i + 12 <= buf.length) {
      frames = ((buf[i + 8] << 24) >>> 0) + ((buf[i + 9] << 16) | (buf[i + 10] << 8) | buf[i + 11]);
    }
    if (type === 'fcTL') defaultIsFrame = true; // a frame control before IDAT makes the default image frame 1
    i += 12 + len;
  }
  if (frames === undefined) return undefined;
  if (frames > 1) return `animated PNG (${frames} frames) is not supported: export the one film as a still PNG or JPEG`;
  if (!defaultIsFrame)
    return (
      'animated PNG whose shown frame is not its default image is not supported: ' +
      'export the film as a still PNG or JPEG'
    );
  return undefined;
}
