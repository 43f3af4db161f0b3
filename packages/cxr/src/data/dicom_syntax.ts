// What transfer syntax do the bytes hold, whatever their header says? Three questions, all
// answered from the bytes alone (no imports: the module can move with whichever one needs it):
//   - is this a DICOM data set at all, and in which encoding, when it comes without preamble,
//     "DICM" and file meta group (bareDataSetSyntax)?
//   - where does the file meta group end, and which transfer syntax does it name (metaGroup)?
//   - does an encapsulated frame hold the codestream its transfer syntax declares? A baseline JPEG
//     labelled JPEG Lossless goes to the lossless decoder, which happily turns DCT data into noise
//     that the model then classifies (seen: PNEUMONIA 0.70). The codestream's own markers say what
//     it is: the first SOF marker of a JPEG (SOF0/1/2 DCT, SOF3 lossless, SOF55 = 0xFFF7 JPEG-LS),
//     the SOC+SIZ pair (FF4F FF51) or the JP2 signature box of JPEG 2000.

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

/**
 * True for a Part-10 file (preamble + 'DICM') and for a bare data set without one, which old
 * archives still hold: it starts with a group 0002 or 0008 element in little endian.
 */
export function isDicom(buf: Uint8Array): boolean {
  return hasPart10Preamble(buf) || bareDataSetSyntax(buf) !== null;
}

/** A Part-10 file: the 128-byte preamble followed by "DICM" (PS3.10 7.1). */
export function hasPart10Preamble(buf: Uint8Array): boolean {
  return buf.length >= 132 && buf[128] === 0x44 && buf[129] === 0x49 && buf[130] === 0x43 && buf[131] === 0x4d;
}

/** The value representations of PS3.5 6.2; any other two letters are not an explicit VR. */
export const VRS = new Set(
  'AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '),
);
/** Explicit VRs with two reserved bytes and a 32-bit length (PS3.5 7.1.2). */
export const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'UV']);
const UNDEFINED_LENGTH = 0xffffffff;
const ELEMENTS_CHECKED = 4;

/**
 * The transfer syntax of a data set without preamble and 'DICM', or null when the bytes are not one.
 * Other binary files can start with bytes that pass for a first element, so the first few elements
 * must all parse: tags ascending, a known VR when explicit, lengths that fit in the bytes (odd ones too:
 * old writers made them, and the decoder reads them).
 */
export function bareDataSetSyntax(buf: Uint8Array): string | null {
  if (buf.length < 12) return null;
  const group = buf[0] | (buf[1] << 8);
  const element = buf[2] | (buf[3] << 8);
  if ((group !== 0x0008 && group !== 0x0002) || element > 0x0fff) return null;
  const explicit = VRS.has(String.fromCharCode(buf[4], buf[5]));
  if (!leadingElementsParse(buf, explicit)) return null;
  return explicit ? EXPLICIT_LE : IMPLICIT_LE;
}

function leadingElementsParse(buf: Uint8Array, firstExplicit: boolean): boolean {
  let explicit = firstExplicit;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  let previous = -1;
  for (let n = 0; n < ELEMENTS_CHECKED; n++) {
    // The bytes end between elements: a small data set, or the head of a file (filmFormat reads only that).
    if (pos + 8 > buf.length) return true;
    const tag = view.getUint16(pos, true) * 0x10000 + view.getUint16(pos + 2, true);
    if (tag <= previous) return false;
    // The file meta group is explicit VR; the data set after it is in its own transfer syntax.
    if (previous >>> 16 === 0x0002 && tag >>> 16 !== 0x0002)
      explicit = VRS.has(String.fromCharCode(buf[pos + 4], buf[pos + 5]));
    let length: number;
    let header = 8;
    let mayBeUndefined = !explicit; // implicit VR: a sequence
    if (explicit) {
      const vr = String.fromCharCode(buf[pos + 4], buf[pos + 5]);
      if (!VRS.has(vr)) return false;
      if (LONG_VRS.has(vr)) {
        header = 12;
        if (pos + header > buf.length) return true;
        length = view.getUint32(pos + 8, true);
        // Sequences, unknown elements and encapsulated pixel data.
        mayBeUndefined = vr === 'SQ' || vr === 'UN' || vr === 'OB' || vr === 'OW';
      } else {
        length = view.getUint16(pos + 6, true);
      }
    } else {
      length = view.getUint32(pos + 4, true);
    }
    // Items follow, whose lengths are their own: the elements read so far must do.
    if (length === UNDEFINED_LENGTH) return mayBeUndefined;
    // A value past the end of the bytes: the head of a larger file, once two elements have parsed.
    if (pos + header + length > buf.length) return n >= 2;
    pos += header + length;
    previous = tag;
  }
  return true;
}

/**
 * The file meta group of a Part-10 file (explicit VR little endian from byte 132, PS3.10 7.1), walked
 * element by element as dicom-parser reads it: where it ends (past the end of the bytes when the file
 * is cut inside it) and the transfer syntax it names. Null without the preamble and "DICM".
 */
export function metaGroup(buf: Uint8Array): { end: number; transferSyntax: string | null } | null {
  if (!hasPart10Preamble(buf)) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 132;
  let transferSyntax: string | null = null;
  while (pos + 2 <= buf.length && view.getUint16(pos, true) === 0x0002) {
    if (pos + 8 > buf.length) return { end: pos + 8, transferSyntax };
    const vr = String.fromCharCode(buf[pos + 4], buf[pos + 5]);
    const long = LONG_VRS.has(vr);
    if (long && pos + 12 > buf.length) return { end: pos + 12, transferSyntax };
    const length = long ? view.getUint32(pos + 8, true) : view.getUint16(pos + 6, true);
    const start = pos + (long ? 12 : 8);
    // An undefined length has no place in the meta group: nothing after it can be located.
    if (length === UNDEFINED_LENGTH) return { end: pos, transferSyntax };
    // A UID is at most 64 characters (PS3.5 9.1).
    if (view.getUint16(pos + 2, true) === 0x0010 && length <= 64 && start + length <= buf.length) {
      transferSyntax = String.fromCharCode(...buf.subarray(start, start + length)).replace(/[\0 ]+$/, '');
    }
    pos = start + length;
  }
  // Bytes left that cannot hold an element's header: the file is cut inside one (of either part).
  if (pos < buf.length && pos + 8 > buf.length) return { end: pos + 8, transferSyntax };
  return { end: pos, transferSyntax };
}

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

const RLE = '1.2.840.10008.1.2.5';
/** An RLE frame's header counts its segments (one per byte plane of each sample), 1 to 15 (PS3.5 G.5). */
const RLE_MAX_SEGMENTS = 15;

/**
 * A sentence saying how the frame contradicts its declared transfer syntax, or null when it
 * agrees (or when its markers are unrecognisable: the codec then reports the damage itself).
 * RLE has no markers of its own: a frame that holds a known codestream, or whose header counts no
 * segments or more than RLE can have, is not RLE (a JPEG read as RLE "had 3774863615 segments").
 */
export function transferSyntaxMismatch(frame: Uint8Array, transferSyntax: string): string | null {
  const declared = (name: string, why = 'decoding it that way would produce noise') =>
    `the file declares transfer syntax ${transferSyntax} (${name}): ${why}. ` +
    'Re-export the image, or correct (0002,0010)';
  const kind = codestreamKind(frame);
  if (transferSyntax === RLE) {
    if (kind !== null) return `the pixel data is ${KIND_NAMES[kind]}, but ${declared('RLE Lossless')}`;
    if (frame.length < 4) return null; // too short for any header: the codec says so
    const segments = (frame[0] | (frame[1] << 8) | (frame[2] << 16) | (frame[3] << 24)) >>> 0;
    if (segments >= 1 && segments <= RLE_MAX_SEGMENTS) return null;
    return (
      `the pixel data does not start with an RLE header (its first four bytes count ${segments} segments, ` +
      `where RLE has 1 to ${RLE_MAX_SEGMENTS}), but ${declared('RLE Lossless', 'it is in another encoding')}`
    );
  }
  const expected = EXPECTED[transferSyntax];
  if (!expected) return null;
  if (kind === null || expected.kinds.includes(kind)) return null;
  return `the pixel data is ${KIND_NAMES[kind]}, but ${declared(expected.name)}`;
}
