// DICOM Part-10 files in and out through dcmjs. Reading stops before the pixel data (only the
// header is needed); a bare data set without the 128-byte preamble and file meta group, which
// old archives still hold, is given one first, since dcmjs reads only proper Part-10 files.
import * as dcmjs from 'dcmjs';
import * as dicomParser from 'dicom-parser';
import { DEFAULT_LIMITS } from '../data/decode';
import { bareDataSetSyntax, hasPart10Preamble } from '../data/dicom';
import { cappedInflater, inflateCap, MAX_SEQUENCE_DEPTH } from '../data/dicom_data_set';
import { DicomError, TS } from '../data/dicom_parse';
import { TRANSFER_SYNTAX_EXPLICIT_LE } from './identity';
import { initialState, type Piece, type State, splitIso2022, withoutControls } from './iso2022';
import { derivedUid } from './uids';

export { decodeIso2022, type Piece, splitIso2022 } from './iso2022';

const { DicomDict, DicomMessage, DicomMetaDictionary } = dcmjs.data;
// dcmjs logs every oddity of a source file (bad lengths, unknown tags) on the console.
dcmjs.log.setLevel('silent');

export type Dataset = dcmjs.NaturalDataset;

const IMPLEMENTATION_CLASS_UID = derivedUid('cxr', 'implementation class');
const IMPLEMENTATION_VERSION = 'CXR_1';

function arrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

function fileMeta(transferSyntax: string, sop?: { classUid: string; instanceUid: string }): dcmjs.DenaturalizedDataset {
  return DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    ...(sop ? { MediaStorageSOPClassUID: sop.classUid, MediaStorageSOPInstanceUID: sop.instanceUid } : {}),
    TransferSyntaxUID: transferSyntax,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION,
  });
}

/**
 * The data set of a DICOM file, without its pixel data. Throws when the bytes are not DICOM. `text: false` is for
 * a caller that reads no text attribute (a UID, a code): ISO 2022 text is then left as its first character set
 * reads it, not decoded again, which is most of the work on a hostile header (seconds for megabytes of escapes and
 * delimiters, on the request thread of POST /jobs, which keys each film by its UID).
 */
export function readHeader(bytes: Uint8Array, opts: { text?: boolean } = {}): Dataset {
  let file = bytes;
  if (!hasPart10Preamble(bytes)) {
    const syntax = bareDataSetSyntax(bytes);
    if (!syntax) throw new Error('not a DICOM file');
    file = Buffer.concat([Buffer.from(new DicomDict(fileMeta(syntax)).write()), bytes]);
  }
  file = inflatedFirst(file);
  const read = () =>
    DicomMessage.readFile(arrayBuffer(file), { untilTag: '7FE00010', includeUntilTagValue: false }).dict;
  try {
    const dict = withReadHooks(read, false);
    if (opts.text !== false) cleanText(dict);
    return DicomMetaDictionary.naturalizeDataset(dict);
  } catch (e) {
    const message = (e as Error).message;
    // dcmjs quotes header values in its messages (an unknown character set as it is): escaped, and cut short.
    if (!/multiple character sets/.test(message)) throw new Error(printable(message, 200));
  }
  // Code extensions (ISO 2022: Japanese, Korean and Chinese names), which dcmjs does not decode: read as Latin-1,
  // which keeps every byte as it is, then decode the text again.
  const dict = readPastCharsets(file);
  if (opts.text === false) return DicomMetaDictionary.naturalizeDataset(dict);
  const raw = dict['00080005'] as { _rawValue?: unknown[] } | undefined;
  const charsets = (raw?._rawValue ?? []).map((v) => String(v));
  const initial = initialState(charsets);
  if (typeof initial === 'string') {
    throw new Error(`Specific Character Set ${printable(charsets.join('\\'), 80)} is not supported: ${initial}`);
  }
  redecodeText(dict, initial);
  cleanText(dict);
  return DicomMetaDictionary.naturalizeDataset(dict);
}

/**
 * A Part-10 file whose data set is deflated, as one in explicit little endian with that data set inflated under
 * the decoder's cap (a TOO_LARGE error naming it above that); any other file as it is. dcmjs inflates a deflated
 * data set whole with pako, with no limit: a 204 KB upload asked for 200 MB, a 32 MB one could ask for 30 GB.
 */
function inflatedFirst(file: Uint8Array): Uint8Array {
  let meta: dicomParser.DataSet;
  try {
    meta = dicomParser.readPart10Header(file);
  } catch {
    return file; // dcmjs says why it cannot be read
  }
  if ((meta.string('x00020010') ?? '').replace(/\0/g, '').trim() !== TS.deflatedLE) return file;
  const end = Math.max(...Object.values(meta.elements).map((e) => e.dataOffset + e.length));
  const fail = (code: DicomError['code'], detail: string) => new DicomError(code, 'DICOM header', detail);
  const inflated = cappedInflater(inflateCap(DEFAULT_LIMITS), fail)(file.subarray(end), 0);
  return Buffer.concat([Buffer.from(new DicomDict(fileMeta(TRANSFER_SYNTAX_EXPLICIT_LE)).write()), inflated]);
}

/**
 * The most elements (nested ones included) a header may hold. A radiograph's holds hundreds, a few thousand with
 * private tags; dcmjs reads some 100,000 a second, so a crafted header of millions of tiny elements (a 32 MB
 * upload) held the thread for tens of seconds, as did a damaged one that dicom-parser had already given up on
 * (queue/job.ts sopInstanceUid falls back to this read).
 */
export const MAX_HEADER_ELEMENTS = 20_000;

/**
 * The most 16-bit words a header read may take. dcmjs finds the end of an item of undefined length by reading
 * the item a word at a time, then reads the item, which does the same for the items nested in it: megabytes
 * wrapped in nested items took a minute (10 MB under 100 levels). The sample films' headers take a few hundred.
 */
export const MAX_HEADER_WORDS = 4_000_000;

type ReadInfo = { tag: { toCleanString(): string }; values: unknown[] };
const messages = DicomMessage as unknown as { _readTag: (...args: unknown[]) => ReadInfo };
const streams = Object.getPrototypeOf(dcmjs.data.ReadBufferStream.prototype) as { readUint16: () => number };

/**
 * Runs a dcmjs read counting the elements it reads, refused past MAX_HEADER_ELEMENTS, the words it reads, refused
 * past MAX_HEADER_WORDS, and how deep sequences nest, refused past MAX_SEQUENCE_DEPTH as the decoder refuses them
 * (10,000 levels in a 360 KB file took 35 s). With `latin1`, a Specific Character Set of several values is read as
 * if its first were empty, so that dcmjs decodes every text as Latin-1 (its bytes, kept), whatever the first value
 * (Japanese katakana, Greek): redecodeText decodes it again; the values themselves stay in the element's raw value.
 * dcmjs reads synchronously: nothing else runs in between. These hooks reach into dcmjs's internals, so
 * package.json pins dcmjs exactly: an upgrade must pass test/dicom-charset-terms and dicom-charset-hostile first.
 */
function withReadHooks<T>(read: () => T, latin1: boolean): T {
  const readTag = messages._readTag;
  const readUint16 = streams.readUint16;
  let words = 0;
  streams.readUint16 = function (this: unknown) {
    if (++words > MAX_HEADER_WORDS) {
      throw new Error(
        `reading the header takes more than ${MAX_HEADER_WORDS} steps (items of undefined length nested around ` +
          "megabytes), more than any radiograph's: the file is damaged or crafted",
      );
    }
    return readUint16.call(this);
  };
  let count = 0;
  let depth = 0; // of elements being read: one for the data set's own, one more per sequence item
  messages._readTag = (...args: unknown[]) => {
    if (++count > MAX_HEADER_ELEMENTS) {
      throw new Error(
        `the header holds more than ${MAX_HEADER_ELEMENTS} elements, more than any radiograph's: the file is ` +
          'damaged or crafted',
      );
    }
    if (depth > MAX_SEQUENCE_DEPTH) {
      throw new Error(
        `the header nests sequences (SQ) more than ${MAX_SEQUENCE_DEPTH} levels deep, more than any image object ` +
          'needs: the file is damaged or crafted',
      );
    }
    depth++;
    let info: ReadInfo;
    try {
      info = readTag.apply(DicomMessage, args);
    } finally {
      depth--;
    }
    if (latin1 && info.values.length > 1 && info.tag.toCleanString() === '00080005') {
      info.values = ['', ...info.values.slice(1)];
    }
    return info;
  };
  try {
    return read();
  } finally {
    messages._readTag = readTag;
    streams.readUint16 = readUint16;
  }
}

/**
 * The data set read with dcmjs's `ignoreErrors`, which lets it go on with the first of several character sets
 * but also makes it stop quietly, with what it read so far, at any other error (a cut file, a bad length): that
 * error, which it only logs, is thrown here, so that such a file is refused as it is with one character set.
 */
function readPastCharsets(file: Uint8Array): dcmjs.DenaturalizedDataset {
  const log = dcmjs.log as unknown as { warn: (...args: unknown[]) => void };
  const warn = log.warn;
  let swallowed: Error | undefined;
  log.warn = (...args: unknown[]) => {
    swallowed ??= args.find((a): a is Error => a instanceof Error);
  };
  try {
    const opts = { untilTag: '7FE00010', includeUntilTagValue: false, ignoreErrors: true };
    const { dict } = withReadHooks(() => DicomMessage.readFile(arrayBuffer(file), opts), true);
    if (swallowed) throw new Error(printable(swallowed.message, 200));
    return dict;
  } finally {
    log.warn = warn;
  }
}

/**
 * `s` with what is not printable ASCII escaped (header bytes in a message or log), cut after `max` characters of
 * the escaped text, before an escape that would not fit whole: half of `\x1b` reads as another byte.
 */
function printable(s: string, max: number): string {
  let out = '';
  let i = 0;
  for (; i < s.length; i++) {
    const n = s.charCodeAt(i);
    const c =
      n >= 0x20 && n <= 0x7e
        ? s[i]
        : n < 0x100
          ? `\\x${n.toString(16).padStart(2, '0')}`
          : `\\u${n.toString(16).padStart(4, '0')}`;
    if (out.length + c.length > max) break;
    out += c;
  }
  return i < s.length ? `${out}… (${s.length} characters)` : out;
}

// Text VRs, whose bytes follow the Specific Character Set; the first four hold several values.
const TEXT_VRS = new Set(['SH', 'LO', 'PN', 'UC', 'ST', 'LT', 'UT']);
// Those and code strings (Modality, Body Part Examined: copied into the results too) have their controls replaced.
const CLEANED_VRS = new Set([...TEXT_VRS, 'CS']);
const MULTI_VALUED = new Set(['SH', 'LO', 'PN', 'UC']);
const BACKSLASH = 0x5c;
const EQUALS = 0x3d;

/** The bytes of text that dcmjs decoded as Latin-1 (its 'iso-8859-1', for an empty first value). */
const byteOf = (() => {
  const decoder = new TextDecoder('iso-8859-1');
  const map = new Map<string, number>();
  for (let b = 0; b < 256; b++) map.set(decoder.decode(Uint8Array.of(b)), b);
  return map;
})();

function textBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = byteOf.get(s[i]) ?? 0x3f;
  return out;
}

/**
 * Decodes every text value of `dict` (and its sequences' items) again as ISO 2022 text, from the raw value dcmjs
 * kept: dcmjs cut it at each backslash and PN '=' byte, which inside a two-byte JIS character is no delimiter.
 */
function redecodeText(dict: dcmjs.DenaturalizedDataset, initial: State): void {
  for (const [tag, el] of Object.entries(dict) as [string, { vr: string; Value?: unknown[]; _rawValue?: unknown }][]) {
    if (el.vr === 'SQ') {
      for (const item of el.Value ?? []) if (item && typeof item === 'object') redecodeText(item as never, initial);
      continue;
    }
    if (!TEXT_VRS.has(el.vr) || el._rawValue === undefined) continue;
    const raw = Array.isArray(el._rawValue) ? el._rawValue.join('\\') : String(el._rawValue);
    const delimiters = el.vr === 'PN' ? [BACKSLASH, EQUALS] : MULTI_VALUED.has(el.vr) ? [BACKSLASH] : [];
    let pieces: Piece[];
    try {
      pieces = splitIso2022(textBytes(raw), delimiters, initial);
    } catch (e) {
      const at = `(${tag.slice(0, 4)},${tag.slice(4)})`;
      throw new Error(`${at} ${(e as Error).message}: the film's text cannot be read; ask its sender for UTF-8`);
    }
    const trim = (s: string) => (el.vr === 'ST' || el.vr === 'LT' || el.vr === 'UT' ? s.trimEnd() : s.trim());
    el.Value = el.vr === 'PN' ? personNames(pieces) : pieces.map((p) => trim(p.text.replace(/\0+$/, '')));
    // The raw value dcmjs kept is Latin-1: it would write it back instead of the decoded text.
    delete el._rawValue;
  }
}

/**
 * Replaces the control characters of every text value of `dict` (and its sequences' items) as withoutControls
 * says, after NUL padding, which some writers use for spaces. A value changed loses the raw value dcmjs kept,
 * which it would write back instead.
 */
function cleanText(dict: dcmjs.DenaturalizedDataset): void {
  for (const el of Object.values(dict) as { vr: string; Value?: unknown[]; _rawValue?: unknown }[]) {
    if (el.vr === 'SQ') {
      for (const item of el.Value ?? []) if (item && typeof item === 'object') cleanText(item as never);
      continue;
    }
    if (!CLEANED_VRS.has(el.vr) || !el.Value) continue;
    let changed = false;
    const clean = (v: unknown) => {
      if (typeof v !== 'string') return v;
      const s = withoutControls(v.replace(/\0+$/, ''), el.vr);
      changed ||= s !== v;
      return s;
    };
    el.Value = el.Value.map((v) =>
      v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, c]) => [k, clean(c)])) : clean(v),
    );
    if (changed) delete el._rawValue;
  }
}

/** PN values as dcmjs holds them: per value, its component groups by name (empty ones left out). */
function personNames(pieces: Piece[]): Record<string, string>[] {
  const names: Record<string, string>[] = [];
  let groups: string[] = [];
  for (const p of pieces) {
    groups.push(p.text.replace(/\0+$/, '').trim());
    if (p.end === EQUALS) continue;
    const [Alphabetic, Ideographic, Phonetic] = groups;
    const name = Object.fromEntries(Object.entries({ Alphabetic, Ideographic, Phonetic }).filter(([, v]) => v));
    if (groups.some(Boolean)) names.push(name as Record<string, string>);
    groups = [];
  }
  return names;
}

/** A data set as a Part-10 file in explicit VR little endian (uncompressed). */
export function writePart10(ds: Dataset): Buffer {
  const classUid = ds.SOPClassUID as string;
  const instanceUid = ds.SOPInstanceUID as string;
  const dict = new DicomDict(fileMeta(TRANSFER_SYNTAX_EXPLICIT_LE, { classUid, instanceUid }));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(ds);
  // The patient and study values are the film's, copied as they are so that the result files with it: dcmjs
  // refuses some that are longer than their VR allows (a PN group over 64 characters, as modalities write several
  // given names and titles; a DA or TM), though it copies over-long LO and SH whole. Refused, the film never got
  // results, taken for a fault of the install (sync.ts ProcessingError). cxr's own values keep to their lengths.
  return Buffer.from(dict.write({ allowInvalidVRLength: true }));
}
