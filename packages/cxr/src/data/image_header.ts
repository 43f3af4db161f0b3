// Header checks for JPEG and PNG variants that the decoder (libvips with an 8-bit libjpeg) cannot read as the
// film a viewer shows. Without them a 12-bit or lossless JPEG was refused as "corrupt", which tells the sender the
// file is damaged and a resend might help, and an animated PNG was read as its first (default) image only.
// Only headers are read: these run before any pixel is decoded.
import { pngChunks, uint32At } from './png_chunks';

/** Start-of-frame markers and the coding process each names (ITU T.81 table B.1; T.87 for JPEG-LS). */
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
  // JPEG-LS (.jls, which some PACS export): another codec altogether, not a JPEG process libjpeg knows.
  247: 'JPEG-LS',
};
/** Define Hierarchical Progression: comes before the frames of a hierarchical JPEG, with the same fields. */
const DHP = 0xde;
/** The processes libjpeg decodes (arithmetic coding included), at 8 bits a sample. */
const READABLE = new Set([0xc0, 0xc1, 0xc2, 0xc9, 0xca]);
const refuseJpeg = (what: string) =>
  `${what} is not supported: only 8-bit baseline, progressive or arithmetic-coded JPEGs are read ` +
  '(export the film as PNG)';

/** The first frame header of a JPEG or JPEG-LS codestream: its marker and the fields its readers need. */
export interface JpegFrameHeader {
  /** A start-of-frame marker (a SOF_PROCESS key), or DHP for a hierarchical JPEG. */
  marker: number;
  /** Bits a sample. */
  precision: number;
  height: number;
  width: number;
  components: number;
}

/**
 * The first frame header (SOF of any process, JPEG-LS's SOF55, or DHP), walking the marker segments from SOI;
 * undefined when the bytes are not a JPEG, stop or go astray before one, or reach a scan or the end first.
 * The one walker for JPEG headers: uploads (jpegUnsupported) and DICOM frames (dicom_codecs.ts) both use it.
 */
export function jpegFrameHeader(b: Uint8Array): JpegFrameHeader | undefined {
  if (b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return undefined; // not at a marker: damaged, for the decoder to report
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2; // markers without a length
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return undefined; // scan or end before any frame header
    if (marker === DHP || SOF_PROCESS[marker] !== undefined) {
      if (i + 9 >= b.length) return undefined; // cut inside the header
      return {
        marker,
        precision: b[i + 4],
        height: (b[i + 5] << 8) | b[i + 6],
        width: (b[i + 7] << 8) | b[i + 8],
        components: b[i + 9],
      };
    }
    i += 2 + ((b[i + 2] << 8) | b[i + 3]);
  }
  return undefined;
}

/**
 * Why a JPEG's frame header cannot be read (JPEG-LS, sample precision other than 8 bits, a lossless or
 * hierarchical process), or undefined when it can or when no frame header is found (the decoder then names the
 * damage).
 */
export function jpegUnsupported(buf: Uint8Array): string | undefined {
  const sof = jpegFrameHeader(buf);
  if (sof === undefined) return undefined;
  // JPEG-LS first: it is named as what it is whatever its precision (PACS write it at 12 or 16 bits too).
  if (sof.marker === 0xf7) return refuseJpeg('JPEG-LS');
  if (sof.marker === DHP) return refuseJpeg('hierarchical JPEG');
  if (sof.precision !== 8) return refuseJpeg(`${sof.precision}-bit JPEG`);
  if (!READABLE.has(sof.marker)) return refuseJpeg(`${SOF_PROCESS[sof.marker]} JPEG`);
  return undefined;
}

/**
 * Why a PNG cannot be read as one film: an animated PNG (APNG) with more than one frame, or whose frames do not
 * include the default image. A viewer plays the frames; the decoder reads only the default image, so which
 * picture is the film is not known. Chunks are walked up to the first IDAT (acTL must come before it).
 */
export function pngUnsupported(buf: Uint8Array): string | undefined {
  let frames: number | undefined;
  let defaultIsFrame = false;
  for (const c of pngChunks(buf)) {
    if (c.type === 'IDAT') break;
    if (c.type === 'acTL' && c.at + 12 <= buf.length) frames = uint32At(buf, c.at + 8);
    if (c.type === 'fcTL') defaultIsFrame = true; // a frame control before IDAT makes the default image frame 1
  }
  // acTL with 0 frames is invalid APNG, and viewers then show the default image as a still: so does the decoder.
  if (frames === undefined || frames === 0) return undefined;
  if (frames > 1) return `animated PNG (${frames} frames) is not supported: export the one film as a still PNG or JPEG`;
  if (!defaultIsFrame)
    return (
      'animated PNG whose shown frame is not its default image is not supported: ' +
      'export the film as a still PNG or JPEG'
    );
  return undefined;
}
