// Does an encapsulated frame hold the codestream its transfer syntax declares? A baseline JPEG
// labelled JPEG Lossless goes to the lossless decoder, which happily turns DCT data into noise
// that the model then classifies (seen: PNEUMONIA 0.70). The codestream's own markers say what
// it is: the first SOF marker of a JPEG (SOF0/1/2 DCT, SOF3 lossless, SOF55 = 0xFFF7 JPEG-LS),
// the SOC+SIZ pair (FF4F FF51) or the JP2 signature box of JPEG 2000. Self-contained on purpose
// (no imports), so that it can move with whichever module ends up holding the codecs.

export type CodestreamKind =
  | 'jpeg-dct'
  | 'jpeg-lossless'
  | 'jpeg-ls'
  | 'jpeg-hierarchical'
  | 'jpeg-arithmetic'
  | 'jpeg2000';

const KIND_NAMES: Record<CodestreamKind, string> = {
  'jpeg-dct': 'a JPEG baseline/extended (DCT) codestream',
  'jpeg-lossless': 'a JPEG lossless (SOF3) codestream',
  'jpeg-ls': 'a JPEG-LS (SOF55) codestream',
  'jpeg-hierarchical': 'a hierarchical JPEG codestream',
  'jpeg-arithmetic': 'an arithmetic-coded JPEG codestream',
  jpeg2000: 'a JPEG 2000 codestream',
};

/** Transfer syntax UID -> the codestream kinds it may carry; syntaxes not listed are not checked. */
const EXPECTED: Record<string, { name: string; kinds: CodestreamKind[] }> = {
  // Progressive (SOF2) is not legal in these, but the DCT decoder reads it correctly, so it is not refused.
  '1.2.840.10008.1.2.4.50': { name: 'JPEG Baseline', kinds: ['jpeg-dct'] },
  '1.2.840.10008.1.2.4.51': { name: 'JPEG Extended', kinds: ['jpeg-dct'] },
  '1.2.840.10008.1.2.4.57': { name: 'JPEG Lossless', kinds: ['jpeg-lossless'] },
  '1.2.840.10008.1.2.4.70': { name: 'JPEG Lossless SV1', kinds: ['jpeg-lossless'] },
  '1.2.840.10008.1.2.4.80': { name: 'JPEG-LS Lossless', kinds: ['jpeg-ls'] },
  '1.2.840.10008.1.2.4.81': { name: 'JPEG-LS Near-Lossless', kinds: ['jpeg-ls'] },
  '1.2.840.10008.1.2.4.90': { name: 'JPEG 2000 Lossless', kinds: ['jpeg2000'] },
  '1.2.840.10008.1.2.4.91': { name: 'JPEG 2000', kinds: ['jpeg2000'] },
};

/** What the frame's leading markers say it is; null when they say nothing recognisable. */
export function codestreamKind(b: Uint8Array): CodestreamKind | null {
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0x4f && b[2] === 0xff && b[3] === 0x51) return 'jpeg2000';
  // JP2 file: a 12-byte signature box 'jP  ' then 0D 0A 87 0A.
  if (b.length >= 12 && b[3] === 0x0c && b[4] === 0x6a && b[5] === 0x50 && b[6] === 0x20 && b[7] === 0x20)
    return 'jpeg2000';
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  let i = 2;
  while (i + 3 < b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    } // fill byte
    if (marker === 0xf7) return 'jpeg-ls';
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (marker <= 0xc2) return 'jpeg-dct';
      if (marker === 0xc3) return 'jpeg-lossless';
      if (marker >= 0xc9) return 'jpeg-arithmetic';
      return 'jpeg-hierarchical'; // SOF5-7: differential
    }
    if (marker === 0xda || marker === 0xd9) return null; // scan or end before any frame header
    i += 2 + ((b[i + 2] << 8) | b[i + 3]);
  }
  return null;
}

/**
 * A sentence saying how the frame contradicts its declared transfer syntax, or null when it
 * agrees (or when its markers are unrecognisable: the codec then reports the damage itself).
 */
export function transferSyntaxMismatch(frame: Uint8Array, transferSyntax: string): string | null {
  const expected = EXPECTED[transferSyntax];
  if (!expected) return null;
  const kind = codestreamKind(frame);
  if (kind === null || expected.kinds.includes(kind)) return null;
  return (
    `the pixel data is ${KIND_NAMES[kind]}, but the file declares transfer syntax ${transferSyntax} ` +
    `(${expected.name}): decoding it that way would produce noise. Re-export the image, or correct (0002,0010)`
  );
}
