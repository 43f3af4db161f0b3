// DICOM Part-10 files in and out through dcmjs. Reading stops before the pixel data (only the
// header is needed); a bare data set without the 128-byte preamble and file meta group, which
// old archives still hold, is given one first, since dcmjs reads only proper Part-10 files.
import * as dcmjs from 'dcmjs';
import { bareDataSetSyntax, hasPart10Preamble } from '../data/dicom';
import { TRANSFER_SYNTAX_EXPLICIT_LE } from './identity';
import { derivedUid } from './uids';

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
  const read = () =>
    DicomMessage.readFile(arrayBuffer(file), { untilTag: '7FE00010', includeUntilTagValue: false }).dict;
  try {
    return DicomMetaDictionary.naturalizeDataset(read());
  } catch (e) {
    const message = (e as Error).message;
    // dcmjs quotes header values in its messages (an unknown character set as it is): escaped, and cut short.
    if (!/multiple character sets/.test(message)) throw new Error(printable(message, 200));
  }
  // Code extensions (ISO 2022: Japanese, Korean and Chinese names), which dcmjs does not decode: read with its
  // first, single-byte set, which keeps these 7-bit and GR bytes as they are, then decode the text again.
  const dict = readPastCharsets(file);
  if (opts.text === false) return DicomMetaDictionary.naturalizeDataset(dict);
  const raw = dict['00080005'] as { _rawValue?: unknown[] } | undefined;
  const charsets = (raw?._rawValue ?? []).map((v) => String(v).trim());
  if (!['', 'ISO 2022 IR 6'].includes(charsets[0] ?? '')) {
    throw new Error(
      `Specific Character Set ${printable(charsets.join('\\'), 80)} is not supported: with code extensions, cxr ` +
        'reads only ISO 2022 IR 6 (ASCII) as the first value',
    );
  }
  redecodeText(dict);
  return DicomMetaDictionary.naturalizeDataset(dict);
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
    const { dict } = DicomMessage.readFile(arrayBuffer(file), opts);
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
const MULTI_VALUED = new Set(['SH', 'LO', 'PN', 'UC']);
const BACKSLASH = 0x5c;
const EQUALS = 0x3d;

/** The bytes of text that dcmjs decoded with its first, single-byte set (ISO 2022 IR 6: its 'iso-8859-1'). */
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
function redecodeText(dict: dcmjs.DenaturalizedDataset): void {
  for (const [tag, el] of Object.entries(dict) as [string, { vr: string; Value?: unknown[]; _rawValue?: unknown }][]) {
    if (el.vr === 'SQ') {
      for (const item of el.Value ?? []) if (item && typeof item === 'object') redecodeText(item as never);
      continue;
    }
    if (!TEXT_VRS.has(el.vr) || el._rawValue === undefined) continue;
    const raw = Array.isArray(el._rawValue) ? el._rawValue.join('\\') : String(el._rawValue);
    const delimiters = el.vr === 'PN' ? [BACKSLASH, EQUALS] : MULTI_VALUED.has(el.vr) ? [BACKSLASH] : [];
    let pieces: Piece[];
    try {
      pieces = splitIso2022(textBytes(raw), delimiters);
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

type G0 = 'ascii' | 'jis';
type G1 = 'latin1' | 'shift_jis' | 'euc-kr' | 'gbk';

// The escape sequences DICOM names for each code extension (PS3.3 C.12.1.1.2): the set they switch G0
// (7-bit bytes) or G1 (bytes 0xA1-0xFE) to.
const ESCAPES: [number[], { g0?: G0; g1?: G1 }][] = [
  [[0x28, 0x42], { g0: 'ascii' }], // ESC ( B: IR 6
  [[0x28, 0x4a], { g0: 'ascii' }], // ESC ( J: IR 14, JIS X 0201 Romaji: ASCII but for two marks
  [[0x24, 0x42], { g0: 'jis' }], // ESC $ B: IR 87, JIS X 0208
  [[0x24, 0x40], { g0: 'jis' }], // ESC $ @
  [[0x29, 0x49], { g1: 'shift_jis' }], // ESC ) I: IR 13, JIS X 0201 Katakana: 0xA1-0xDF as in Shift JIS
  [[0x24, 0x29, 0x43], { g1: 'euc-kr' }], // ESC $ ) C: IR 149, KS X 1001
  [[0x24, 0x29, 0x41], { g1: 'gbk' }], // ESC $ ) A: IR 58, GB 2312
];

const ESC = 0x1b;

/** A stretch of decoded text and the delimiter byte that ended it (null at the end of the value). */
export interface Piece {
  text: string;
  end: number | null;
}

const decoders = new Map<string, TextDecoder>();
function decodeRun(kind: G0 | G1, b: Uint8Array): string {
  if (kind === 'ascii' || kind === 'latin1')
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
  // JIS X 0208 in G0 is EUC-JP's code set 1 with the high bit cleared.
  const label = kind === 'jis' ? 'euc-jp' : kind;
  let decoder = decoders.get(label);
  if (!decoder) decoders.set(label, (decoder = new TextDecoder(label)));
  return decoder.decode(kind === 'jis' ? b.map((x) => x | 0x80) : b);
}

/**
 * ISO 2022 text (bytes) as Unicode, cut at the `delimiters`, bytes that delimit only where G0 holds ASCII; each
 * piece starts in the initial state (PS3.5 6.1.2.5.3). Linear in the length, however many escapes it holds.
 * Throws on an escape sequence it does not know (its bytes in hex).
 */
export function splitIso2022(b: Uint8Array, delimiters: number[] = []): Piece[] {
  const pieces: Piece[] = [];
  let parts: string[] = [];
  let g0: G0 = 'ascii';
  let g1: G1 = 'latin1';
  let kind: G0 | G1 = 'ascii';
  let start = 0;
  const flush = (end: number) => {
    if (end > start) parts.push(decodeRun(kind, b.subarray(start, end)));
  };
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c === ESC) {
      flush(i);
      const known = ESCAPES.find(([seq]) => seq.every((x, k) => b[i + 1 + k] === x));
      if (!known) {
        const seq = [...b.subarray(i, i + 4)].map((x) => x.toString(16).padStart(2, '0').toUpperCase()).join(' ');
        throw new Error(`uses a character set cxr does not know (escape sequence ${seq} at byte ${i})`);
      }
      g0 = known[1].g0 ?? g0;
      g1 = known[1].g1 ?? g1;
      i += 1 + known[0].length;
      start = i;
      continue;
    }
    const k: G0 | G1 = c >= 0x80 ? g1 : g0 === 'jis' && c >= 0x21 && c <= 0x7e ? 'jis' : 'ascii';
    if (k === 'ascii' && delimiters.includes(c)) {
      flush(i);
      pieces.push({ text: parts.join(''), end: c });
      parts = [];
      g0 = 'ascii';
      g1 = 'latin1';
      start = i + 1;
    } else if (k !== kind) {
      flush(i);
      start = i;
    }
    kind = k;
    i++;
  }
  flush(b.length);
  pieces.push({ text: parts.join(''), end: null });
  return pieces;
}

/** ISO 2022 text (as the bytes of a Latin-1 string) as Unicode; throws on a code extension it does not know. */
export function decodeIso2022(s: string): string {
  return splitIso2022(Buffer.from(s, 'latin1'))[0].text;
}

/** A data set as a Part-10 file in explicit VR little endian (uncompressed). */
export function writePart10(ds: Dataset): Buffer {
  const classUid = ds.SOPClassUID as string;
  const instanceUid = ds.SOPInstanceUID as string;
  const dict = new DicomDict(fileMeta(TRANSFER_SYNTAX_EXPLICIT_LE, { classUid, instanceUid }));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(ds);
  return Buffer.from(dict.write());
}
