// Reading a DICOM data set with dicom-parser (a capped inflater for deflated ones, a cap on nested sequences).
// Why one could not be read is said in words a user can act on: a file cut short, a data set in another transfer
// syntax than its header names, open-length pixel data.
import * as zlib from 'node:zlib';
import * as dicomParser from 'dicom-parser';
import type { DecodeLimits } from './decode';
import { DicomError, errorText, type Fail, NATIVE, shownValue, TS, TS_NAMES, transferSyntaxName } from './dicom_parse';
import { LONG_VRS, metaGroup, VRS } from './dicom_syntax';

/**
 * The most bytes a deflated data set may inflate to: what the largest accepted frame can need (16-bit samples at
 * the pixel limit), plus room for the header. A deflated data set is a compression bomb waiting to happen (255 KB
 * inflating to 250 MB was seen); every reader of the whole (the decoder, the header read of dicom_out/part10.ts)
 * inflates with this cap. The UID key of POST /jobs inflates the head alone (headInflater).
 */
export function inflateCap(limits: DecodeLimits): number {
  return Math.max(limits.maxInputBytes, 2 * limits.maxPixels) + 1024 * 1024;
}

/**
 * An inflater for dicom-parser's `inflater` option: the bytes up to `position` as they are, then the rest
 * inflated by Node's own zlib, which stops as soon as `cap` bytes are passed (a TOO_LARGE failure naming the cap).
 */
export function cappedInflater(cap: number, fail: Fail): (bytes: Uint8Array, position: number) => Uint8Array {
  return (bytes, position) => {
    let inflated: Buffer;
    try {
      inflated = zlib.inflateRawSync(bytes.subarray(position), { maxOutputLength: cap });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw fail(
          'TOO_LARGE',
          `deflated data set inflates to more than ${cap} bytes (the most an image within the pixel limit needs)`,
        );
      }
      throw fail('CORRUPT', `deflated data set does not inflate: ${errorText(e)}`);
    }
    const out = new Uint8Array(position + inflated.length);
    out.set(bytes.subarray(0, position));
    out.set(inflated, position);
    return out;
  };
}

/**
 * Inflated bytes of a deflated data set that a read of its first elements looks at (queue/job.ts uidByTag: the SOP
 * Instance UID, in group 0008, within the first hundred bytes of any film's data set).
 */
export const HEAD_INFLATE_BYTES = 1024 * 1024;

/** The first compressed bytes inflated by headInflater; four times more at each step that falls short. */
const HEAD_FIRST_DEFLATED = 1024;

/**
 * An inflater for dicom-parser's `inflater` option that inflates only the head of a deflated data set: at least
 * `headBytes` bytes (all of it when shorter), at most 4 × `headBytes`, never the rest. Inflating the whole data set
 * (up to inflateCap, ~100 MB of zeros from 100 KB) to read one UID held POST /jobs's request thread for 200-300 ms
 * a film (test/films-s31-deflate-head.test.ts); this reads its head in a few. The compressed bytes are inflated
 * from a prefix that grows fourfold while what it inflates to falls short of `headBytes` (a cut stream inflates
 * as far as it goes: Z_SYNC_FLUSH); a prefix that inflates past 4 × `headBytes` (deflate inflates up to 1032-fold)
 * is not inflated further, and the step before it is kept.
 */
export function headInflater(headBytes: number, fail: Fail): (bytes: Uint8Array, position: number) => Uint8Array {
  return (bytes, position) => {
    const deflated = bytes.subarray(position);
    const options = { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: 4 * headBytes };
    let inflated: Uint8Array = new Uint8Array(0);
    for (let n = HEAD_FIRST_DEFLATED; inflated.length < headBytes; n *= 4) {
      try {
        inflated = zlib.inflateRawSync(deflated.subarray(0, n), options);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') break;
        throw fail('CORRUPT', `deflated data set does not inflate: ${errorText(e)}`);
      }
      if (n >= deflated.length) break;
    }
    const out = new Uint8Array(position + inflated.length);
    out.set(bytes.subarray(0, position));
    out.set(inflated, position);
    return out;
  };
}

export function parseDataSet(
  buf: Uint8Array,
  bareSyntax: string | null,
  limits: DecodeLimits,
  fail: Fail,
): dicomParser.DataSet {
  const inflater = cappedInflater(inflateCap(limits), fail);
  const options = {
    ...(bareSyntax ? { TransferSyntaxUID: bareSyntax } : {}),
    inflater: inflater as unknown as (arr: Uint8Array, position: number) => void,
  };
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(buf, options);
  } catch (e) {
    if (e instanceof DicomError) throw e;
    // dicom-parser reads nested sequences by recursion: 50,000 levels ran out of stack.
    if (/Maximum call stack size exceeded/.test(errorText(e))) throw tooDeep(fail);
    throw parseFailure(e, buf, bareSyntax, fail);
  }
  if (sequenceDepth(ds) > MAX_SEQUENCE_DEPTH) throw tooDeep(fail);
  return ds;
}

/**
 * The deepest nesting of sequences (SQ) read. Image objects nest a few levels (a code sequence in a view
 * code sequence, ...); beyond this a file is damaged or crafted, and reading it exhausts the stack.
 */
export const MAX_SEQUENCE_DEPTH = 64;

function tooDeep(fail: Fail): DicomError {
  return fail(
    'CORRUPT',
    `the data set nests sequences (SQ) more than ${MAX_SEQUENCE_DEPTH} levels deep, more than any image ` +
      'object needs and than this reader follows: the file is damaged or not an image object',
  );
}

/** How deep sequences nest in a parsed data set (walked without recursion), up to one past the limit. */
function sequenceDepth(ds: dicomParser.DataSet): number {
  let deepest = 0;
  const stack: [dicomParser.DataSet, number][] = [[ds, 0]];
  while (stack.length && deepest <= MAX_SEQUENCE_DEPTH) {
    const [set, depth] = stack.pop()!;
    deepest = Math.max(deepest, depth);
    for (const el of Object.values(set.elements))
      for (const item of el.items ?? []) if (item.dataSet) stack.push([item.dataSet, depth + 1]);
  }
  return deepest;
}

/** dicom-parser's ways of saying that it ran past the end of the bytes. */
const OVERRUN = /overrun|overread|past (the )?end|beyond|cannot be greater than or equal to 'byteArray' length/i;

/**
 * Why dicom-parser could not read a data set, in words a user can act on (its own messages name its
 * internal functions). A file cut short and a data set not in the transfer syntax its header names
 * both show as an element running past the end of the file; they are told apart by reading the data
 * set in the other encodings, and by whether the elements read before the failure were well formed.
 */
function parseFailure(e: unknown, buf: Uint8Array, bareSyntax: string | null, fail: Fail): DicomError {
  const text = errorText(e);
  const meta = bareSyntax ? null : metaGroup(buf);
  if (meta && meta.end >= buf.length) {
    return fail(
      'TRUNCATED',
      `the file ends at byte ${buf.length}, within or right after its file meta information (group 0002): ` +
        'it is truncated',
    );
  }
  if (meta && /0002,0010/.test(text)) {
    return fail(
      'CORRUPT',
      'the file meta information (group 0002) has no TransferSyntaxUID (0002,0010), so the data set cannot be read',
    );
  }
  if (/basic offset table not found/.test(text)) return openLengthPixels(meta?.transferSyntax ?? bareSyntax, fail);
  if (!OVERRUN.test(text)) return fail('CORRUPT', `the DICOM data set cannot be parsed: ${text}`);
  const mismatch = meta?.transferSyntax ? syntaxMismatch(buf.subarray(meta.end), meta.transferSyntax) : null;
  if (mismatch) {
    return fail(
      'TRANSFER_SYNTAX_MISMATCH',
      `${mismatch} (read as its header says, an element runs past the end of the file). ${RELABEL}`,
    );
  }
  const cut = cutAt(e, meta?.end ?? 0);
  if (cut) return fail('TRUNCATED', `the file ends inside ${cut} (the file is truncated)`);
  return fail(
    'CORRUPT',
    "the DICOM data set cannot be parsed: an element's length runs past the end of the file (the file is " +
      'damaged or truncated, or not in the transfer syntax its header names)',
  );
}

/**
 * Pixel data of undefined length (FFFFFFFF) that does not start with an item: dicom-parser reads any such
 * element as encapsulated and says "basic offset table not found". Said in DICOM's terms.
 */
function openLengthPixels(ts: string | null, fail: Fail): DicomError {
  const syntax = ts ?? TS.implicitLE;
  if (NATIVE.has(syntax)) {
    return fail(
      'CORRUPT',
      `the pixel data (7FE0,0010) has an undefined length (FFFFFFFF), but the transfer syntax, ${syntax} ` +
        `(${transferSyntaxName(syntax)}), is native: native (uncompressed) pixel data must have a defined ` +
        'length; only compressed (encapsulated) pixel data may be open-ended. The file is damaged, or its ' +
        'TransferSyntaxUID (0002,0010) names the wrong syntax',
    );
  }
  return fail(
    'CORRUPT',
    'the compressed pixel data (7FE0,0010) does not begin with its basic offset table, an item (FFFE,E000): ' +
      'the file is damaged',
  );
}

/** What to do about a data set in another transfer syntax than its header names. */
export const RELABEL = 'Re-export the image, or correct its TransferSyntaxUID (0002,0010)';

/**
 * For a data set that does not read as the transfer syntax its file meta group names: the clause
 * saying which one it does read as, completely and with its pixel data (so that the claim is sure).
 * Null when no other reading does (deflated data are not tried).
 */
export function syntaxMismatch(dataSet: Uint8Array, declared: string): string | null {
  if (declared === TS.deflatedLE) return null;
  // Compressed syntaxes keep their data set in explicit VR little endian.
  const readAs = declared === TS.implicitLE || declared === TS.explicitBE ? declared : TS.explicitLE;
  const actual = [TS.explicitLE, TS.implicitLE, TS.explicitBE].find((ts) => ts !== readAs && readsWhole(dataSet, ts));
  if (!actual) return null;
  return (
    `the header names transfer syntax ${shownValue(declared, 'uid')} (${transferSyntaxName(declared)}), but the ` +
    'data set is ' +
    `written in ${TS_NAMES[actual]}`
  );
}

/** Whether `bytes` read as a whole data set in transfer syntax `ts`, pixel data included. */
function readsWhole(bytes: Uint8Array, ts: string): boolean {
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes, { TransferSyntaxUID: ts });
  } catch {
    return false;
  }
  // An implicit VR reading stops quietly at the end of the bytes: every value must fit in them. (The
  // transfer syntax passed in comes back as an element of its own, read from nowhere.)
  const elements = Object.values(ds.elements)
    .filter((el) => el.dataOffset !== undefined)
    .sort((a, b) => a.dataOffset - b.dataOffset);
  return (
    ds.elements.x7fe00010 !== undefined &&
    elements.every((el, i) => el.dataOffset + el.length <= bytes.length && (i === 0 || el.tag > elements[i - 1].tag))
  );
}

/** The longest element header (explicit VR with a 32-bit length, PS3.5 7.1.2). */
const MAX_HEADER = 12;

/**
 * Where a file cut short ends, for people ("element (7FE0,0010): its value needs ..."), when everything
 * read up to there was well formed (tags ascending, known VRs) and only the last element, or the one after
 * it (its header cut, or a value of open length that dicom-parser was reading when the bytes ran out), runs
 * past the end. Null when what was read looks like garbage.
 */
function cutAt(e: unknown, start: number): string | null {
  // dicom-parser hands over the data set read so far (the file meta group not merged in yet).
  const ds =
    typeof e === 'object' && e !== null && 'dataSet' in e
      ? (e as { dataSet?: dicomParser.DataSet }).dataSet
      : undefined;
  if (!ds) return null;
  const size = ds.byteArray.length;
  const elements = Object.values(ds.elements).sort((a, b) => a.dataOffset - b.dataOffset);
  const wellFormed = elements.every(
    (el, i) => (i === 0 || el.tag > elements[i - 1].tag) && (el.vr === undefined || VRS.has(el.vr)),
  );
  if (!wellFormed) return null;
  const last = elements.at(-1);
  if (last && last.dataOffset + last.length > size) return valueCut(last, size);
  let end = last ? last.dataOffset + last.length : start;
  // The length dicom-parser gives an element of open length leaves out the delimiter that ends it.
  if (last?.hadUndefinedLength && end + 8 <= size && isDelimiter(ds, end)) end += 8;
  // A sequence or encapsulated pixel data of open length is kept only once read to its delimiter: the file
  // ending inside it leaves its header alone after the last element kept (a film cut in its first fragment).
  const next = elementHeaderAt(ds, end, last?.tag);
  if (next && (next.hadUndefinedLength || next.dataOffset + next.length > size)) return valueCut(next, size);
  if (size - end >= MAX_HEADER) return null;
  const which = last ? `after ${tagName(last.tag)}` : 'the first of the data set';
  return `the header of an element (${which}), at byte ${size}`;
}

/** Whether a sequence delimitation item (FFFE,E0DD) starts at `at`. */
const isDelimiter = (ds: dicomParser.DataSet, at: number) =>
  ds.byteArrayParser.readUint16(ds.byteArray, at) === 0xfffe &&
  ds.byteArrayParser.readUint16(ds.byteArray, at + 2) === 0xe0dd;

const tagName = (tag: string) => `(${tag.slice(1, 5)},${tag.slice(5)})`.toUpperCase();

/** How an element's value runs past the end of the `size` bytes there are. */
function valueCut(el: Pick<dicomParser.Element, 'tag' | 'dataOffset' | 'length' | 'hadUndefinedLength'>, size: number) {
  const held = Math.max(0, size - el.dataOffset);
  // Encapsulated pixel data and sequences of undefined length end with a delimiter, not at a count.
  return el.hadUndefinedLength || el.length === 0xffffffff
    ? `element ${tagName(el.tag)}: its value, of open length (FFFFFFFF: it ends at a delimiter), ` +
        `has no end in the ${held} bytes there`
    : `element ${tagName(el.tag)}: its value needs ${el.length} bytes, ${held} are there`;
}

/**
 * The element whose header starts at `at`, read as the data set's own are (explicit VR when a known VR follows the
 * tag, else implicit), when its whole header is there and its tag follows `after`; else undefined.
 */
function elementHeaderAt(ds: dicomParser.DataSet, at: number, after: string | undefined) {
  const bytes = ds.byteArray;
  const read = ds.byteArrayParser;
  if (at + 8 > bytes.length) return undefined;
  const hex = (n: number) => n.toString(16).padStart(4, '0');
  const tag = `x${hex(read.readUint16(bytes, at))}${hex(read.readUint16(bytes, at + 2))}`;
  if (after !== undefined && tag <= after) return undefined;
  const vr = String.fromCharCode(bytes[at + 4], bytes[at + 5]);
  const long = !VRS.has(vr) || LONG_VRS.has(vr);
  const dataOffset = at + (VRS.has(vr) && long ? 12 : 8);
  if (dataOffset > bytes.length) return undefined;
  const length = !VRS.has(vr)
    ? read.readUint32(bytes, at + 4)
    : long
      ? read.readUint32(bytes, at + 8)
      : read.readUint16(bytes, at + 6);
  return { tag, dataOffset, length, hadUndefinedLength: length === 0xffffffff };
}
