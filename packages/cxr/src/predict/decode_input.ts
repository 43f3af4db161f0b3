// An upload's bytes to what the predictor needs: the model input (S×S gray), facts for the OOD
// checks, and a display-size grayscale copy for the heat map and thumbnail. Pure data in and
// out (no tensors, no model), so that it can run in a worker thread: the server decodes there,
// and its event loop keeps answering while a huge or hostile file is being taken apart.
import sharp from 'sharp';
import { decodeBuffer, decodeRawGray, type DecodeLimits, sniffFormat, unsupportedFormat } from '../data/decode';
import { decodeDicom, isDicom } from '../data/dicom';
import { unscaledPngSamples } from '../data/png16_decode';
// From image_checks itself, not explain/ood, which imports models/io: through it every decode worker thread loaded
// TensorFlow.js (about 19 MB of heap each), and the light entry's declarations reached tfjs-layers'.
import { type ImageFacts, saturatedFraction } from '../explain/image_checks';
import { InputError } from './errors';

const HEATMAP_SIDE = 512;
/** The side of the copy the colour check reads (the page's local mode reads the same). */
const COLOUR_CHECK_SIDE = 64;

export interface Display {
  gray: Uint8Array;
  width: number;
  height: number;
}

export interface DecodedInput {
  kind: 'jpeg' | 'png' | 'dicom';
  width: number;
  height: number;
  pixels: Uint8Array;
  facts: ImageFacts;
  display?: Display;
  /** Things about the input itself worth a warning (not OOD findings). */
  notes: string[];
}

export interface DecodeRequest {
  /** The model's input side. */
  size: number;
  limits: DecodeLimits;
  /** Also make the display copy (heat map, thumbnail). */
  wantDisplay: boolean;
}

/** Decodes elsewhere (e.g. a worker pool); must reject with the same errors as decodeInput. */
export type InputDecoder = (bytes: Buffer, req: DecodeRequest) => Promise<DecodedInput>;

/** Content-sniffed decode to the model input, plus a display-size grayscale copy when wanted. */
export async function decodeInput(bytes: Buffer, req: DecodeRequest): Promise<DecodedInput> {
  const { size, limits, wantDisplay } = req;
  if (bytes.length === 0) throw new InputError('EMPTY', 'empty file (0 bytes)');
  const format = sniffFormat(bytes);
  if (format === 'jpeg' || format === 'png') {
    const d = await decodeBuffer(bytes, size, { limits, name: 'image' });
    const facts: ImageFacts = { pixels: d.pixels, size };
    let display: Display | undefined;
    // Colour is lost in the model input; look at a small colour copy when the file has colour.
    const channels = (await sharp(bytes).metadata()).channels ?? 1;
    if (wantDisplay || channels >= 3) {
      // A 16-bit PNG of 12-bit values is shown as the model read it (decode.ts), not near-black.
      const unscaled = await unscaledPngSamples(bytes);
      const source = (
        unscaled
          ? sharp(unscaled.data, {
              raw: { width: unscaled.info.width, height: unscaled.info.height, channels: unscaled.info.channels },
            })
          : sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'warning', ignoreIcc: true }).autoOrient()
      ).flatten({ background: { r: 0, g: 0, b: 0 } });
      // The colour check always reads the 64-pixel copy, as the page's local mode does: read from the display
      // copy when one was wanted, a thin coloured grid (1 px every 32) was 13 % coloured there and none at 64 px,
      // and the same film was "cannot assess" with a heat map and assessed without one.
      if (channels >= 3) {
        const small = await rawCopy(source.clone(), COLOUR_CHECK_SIDE);
        facts.colourFraction = saturatedFraction(small.data, small.info.channels);
      }
      if (wantDisplay) {
        const { data, info } = await rawCopy(source, HEATMAP_SIDE);
        display = { gray: toGray(data, info.channels), width: info.width, height: info.height };
      }
    }
    return { kind: format, width: d.width, height: d.height, pixels: d.pixels, facts, display, notes: [] };
  }
  if (isDicom(bytes)) {
    const dcm = await decodeDicom(bytes, { limits, name: 'DICOM' });
    const d = await decodeRawGray({ width: dcm.width, height: dcm.height, data: dcm.gray }, size, {
      limits,
      name: 'DICOM',
    });
    const facts: ImageFacts = {
      pixels: d.pixels,
      size,
      modality: dcm.modality,
      viewPosition: dcm.viewPosition,
      bodyPart: dcm.bodyPart,
      patientAge: dcm.patientAge,
      ageFromDates: dcm.ageFromDates,
      ...(dcm.forProcessing ? { forProcessing: true } : {}),
    };
    let display: Display | undefined;
    if (wantDisplay) {
      const { data, info } = await sharp(dcm.gray, { raw: { width: dcm.width, height: dcm.height, channels: 1 } })
        .resize(HEATMAP_SIDE, HEATMAP_SIDE, { fit: 'inside', withoutEnlargement: true })
        .raw()
        .toBuffer({ resolveWithObject: true });
      display = { gray: toGray(data, info.channels), width: info.width, height: info.height };
    }
    const notes = dcm.frames > 1 ? [`multi-frame DICOM (${dcm.frames} frames): only the first frame was read`] : [];
    return { kind: 'dicom', width: dcm.width, height: dcm.height, pixels: d.pixels, facts, display, notes };
  }
  throw new InputError('UNSUPPORTED_FORMAT', unsupportedFormat(format, true));
}

/** `source` fitted inside side × side (never enlarged), as 8-bit raw samples. */
function rawCopy(source: sharp.Sharp, side: number) {
  return source
    .resize(side, side, { fit: 'inside', withoutEnlargement: true })
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
}

/** Rec. 601 luma, as decode.ts computes the model input. */
function toGray(data: Uint8Array, channels: number): Uint8Array {
  if (channels === 1) return new Uint8Array(data.buffer, data.byteOffset, data.length);
  const n = data.length / channels;
  const out = new Uint8Array(n);
  if (channels === 2) {
    for (let i = 0; i < n; i++) out[i] = data[2 * i];
    return out;
  }
  for (let i = 0; i < n; i++) {
    out[i] = Math.round(0.299 * data[i * channels] + 0.587 * data[i * channels + 1] + 0.114 * data[i * channels + 2]);
  }
  return out;
}
