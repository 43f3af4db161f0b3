// Decoding 16-bit PNGs whose samples were written in fewer bits (png16.ts holds the rule, free of Node and sharp
// so that the page's bundle can use it): the model input (decode.ts) and the copies made beside it (the display
// and heat-map film, predict/decode_input.ts) read such a film alike.
import sharp from 'sharp';
import { isPng16, pngSignificantBits, samplesTo8, unscaledBits } from './png16';

/**
 * The 8-bit samples of a 16-bit PNG written in fewer bits (png16.ts), oriented, as the model input reads them;
 * null for every other file. For copies made beside the model input (the page's display and heat-map film): read
 * by sharp alone, such a film would show near-black where the model saw it.
 */
export async function unscaledPngSamples(buf: Uint8Array): Promise<{ data: Buffer; info: sharp.OutputInfo } | null> {
  if (!isPng16(buf)) return null;
  const meta = await sharp(buf, { limitInputPixels: false, failOn: 'warning', ignoreIcc: true }).metadata();
  const colourChannels = (meta.channels ?? 1) - (meta.hasAlpha ? 1 : 0);
  if (meta.depth !== 'ushort' || (colourChannels !== 1 && !pngSignificantBits(buf))) return null;
  const pipeline = sharp(buf, { failOn: 'warning', ignoreIcc: true }).autoOrient();
  return unscaledPng(buf, pipeline.toColourspace(colourChannels === 1 ? 'grey16' : 'rgb16'), !!meta.hasAlpha);
}

/** A 16-bit PNG's pixels in 8 bits where its samples were written in fewer bits (png16.ts), else null. */
export async function unscaledPng(buf: Uint8Array, pipeline: sharp.Sharp, hasAlpha: boolean) {
  // The pipeline keeps the file's own colourspace (grey16 or rgb16): sharp's default, sRGB, is 8-bit.
  const { data, info } = await pipeline.raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  // A copy: the decoder's buffer need not start on a 2-byte boundary.
  const samples = new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
  const bits = unscaledBits(buf, samples, info.channels, hasAlpha);
  if (bits === undefined) return null;
  const gray = samplesTo8(samples, info.channels, hasAlpha, bits);
  return { data: Buffer.from(gray.buffer, gray.byteOffset, gray.length), info };
}
