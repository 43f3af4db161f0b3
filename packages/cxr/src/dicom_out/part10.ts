// DICOM Part-10 files in and out through dcmjs. Reading stops before the pixel data (only the
// header is needed); a bare data set without the 128-byte preamble and file meta group, which
// old archives still hold, is given one first, since dcmjs reads only proper Part-10 files.
import * as dcmjs from 'dcmjs';
import { bareDataSetSyntax } from '../data/dicom';
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

function hasPreamble(b: Uint8Array): boolean {
  return b.length >= 132 && b[128] === 0x44 && b[129] === 0x49 && b[130] === 0x43 && b[131] === 0x4d;
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

/** The data set of a DICOM file, without its pixel data. Throws when the bytes are not DICOM. */
export function readHeader(bytes: Uint8Array): Dataset {
  let file = bytes;
  if (!hasPreamble(bytes)) {
    const syntax = bareDataSetSyntax(bytes);
    if (!syntax) throw new Error('not a DICOM file');
    file = Buffer.concat([Buffer.from(new DicomDict(fileMeta(syntax)).write()), bytes]);
  }
  const read = (ignoreErrors: boolean) =>
    DicomMessage.readFile(arrayBuffer(file), { untilTag: '7FE00010', includeUntilTagValue: false, ignoreErrors }).dict;
  try {
    return DicomMetaDictionary.naturalizeDataset(read(false));
  } catch (e) {
    if (!/multiple character sets/.test((e as Error).message)) throw e;
  }
  // Code extensions (ISO 2022: Japanese, Korean and Chinese names), which dcmjs does not decode: read with its
  // first, single-byte set, which keeps these 7-bit and GR bytes as they are, then decode the text again.
  const dict = read(true);
  const raw = dict['00080005'] as { _rawValue?: unknown[] } | undefined;
  const charsets = (raw?._rawValue ?? []).map((v) => String(v).trim());
  if (!['', 'ISO 2022 IR 6'].includes(charsets[0] ?? '')) {
    throw new Error(
      `Specific Character Set ${charsets.join('\\')} is not supported: with code extensions, cxr reads only ` +
        'ISO 2022 IR 6 (ASCII) as the first value',
    );
  }
  const ds = DicomMetaDictionary.naturalizeDataset(dict);
  for (const [k, v] of Object.entries(ds)) ds[k] = redecode(v);
  return ds;
}

/** A string, PN object or array of them read with the single-byte set, decoded again as ISO 2022 text. */
function redecode(v: unknown): unknown {
  if (typeof v === 'string') return decodeIso2022(v);
  if (Array.isArray(v)) return v.map(redecode);
  // A person name: { Alphabetic, Ideographic, Phonetic }, each component its own ISO 2022 text.
  if (v && typeof v === 'object' && !ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer)) {
    if (!Object.values(v).every((x) => typeof x === 'string')) return v;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redecode(x)]));
  }
  return v;
}

// The escape sequences DICOM names for each code extension (PS3.3 C.12.1.1.2): the set they switch G0
// (7-bit bytes) or G1 (bytes 0xA1-0xFE) to.
const ESCAPES: Record<string, { g0?: 'ascii' | 'jis'; g1?: string }> = {
  '(B': { g0: 'ascii' }, // IR 6
  '(J': { g0: 'ascii' }, // IR 14, JIS X 0201 Romaji: ASCII but for two marks
  $B: { g0: 'jis' }, // IR 87, JIS X 0208
  '$@': { g0: 'jis' },
  ')I': { g1: 'shift_jis' }, // IR 13, JIS X 0201 Katakana: 0xA1-0xDF as in Shift JIS
  '$)C': { g1: 'euc-kr' }, // IR 149, KS X 1001
  '$)A': { g1: 'gbk' }, // IR 58, GB 2312
};

const ESC = '\x1b';

/** `s` cut into runs of 7-bit characters and of the others (G0 and G1 bytes of ISO 2022 text). */
function runs(s: string): string[] {
  const out: string[] = [];
  for (const ch of s) {
    const last = out.length - 1;
    if (last >= 0 && out[last].charCodeAt(0) >= 0x80 === ch.charCodeAt(0) >= 0x80) out[last] += ch;
    else out.push(ch);
  }
  return out;
}

/** ISO 2022 text (as the bytes of a Latin-1 string) as Unicode; throws on a code extension it does not know. */
export function decodeIso2022(s: string): string {
  let g0: 'ascii' | 'jis' = 'ascii';
  let g1 = 'latin1';
  let out = '';
  for (const [i, part] of s.split(ESC).entries()) {
    let text = part;
    if (i > 0) {
      const esc = Object.keys(ESCAPES).find((e) => part.startsWith(e));
      if (!esc) throw new Error(`text uses a character set this reader does not know (escape ESC ${part.slice(0, 3)})`);
      g0 = ESCAPES[esc].g0 ?? g0;
      g1 = ESCAPES[esc].g1 ?? g1;
      text = part.slice(esc.length);
    }
    for (const run of runs(text)) {
      const b = Buffer.from(run, 'latin1');
      if (run.charCodeAt(0) >= 0x80) out += g1 === 'latin1' ? run : new TextDecoder(g1).decode(b);
      else out += g0 === 'jis' ? new TextDecoder('iso-2022-jp').decode(Buffer.from(`\x1b$B${run}`, 'latin1')) : run;
    }
  }
  return out;
}

/** A data set as a Part-10 file in explicit VR little endian (uncompressed). */
export function writePart10(ds: Dataset): Buffer {
  const classUid = ds.SOPClassUID as string;
  const instanceUid = ds.SOPInstanceUID as string;
  const dict = new DicomDict(fileMeta(TRANSFER_SYNTAX_EXPLICIT_LE, { classUid, instanceUid }));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(ds);
  return Buffer.from(dict.write());
}
