// A minimal DICOM writer for tests: builds the edge cases (transfer syntaxes, VOI, signedness,
// colour layouts, broken files) that the six sample files do not cover.
import * as zlib from 'node:zlib';

export type Value = string | number[] | Uint8Array | Uint16Array | Int16Array | Item[];
export type Item = Element[];
export interface Element {
  tag: number;
  vr: string;
  value: Value;
}

export const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  deflatedLE: '1.2.840.10008.1.2.1.99',
  explicitBE: '1.2.840.10008.1.2.2',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegLSLossless: '1.2.840.10008.1.2.4.80',
  j2kLossless: '1.2.840.10008.1.2.4.90',
  rle: '1.2.840.10008.1.2.5',
  mpeg2: '1.2.840.10008.1.2.4.100',
};

const LONG_VRS = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN']);

interface Enc {
  implicit: boolean;
  bigEndian: boolean;
}

function u16(v: number, be: boolean): Buffer {
  const b = Buffer.alloc(2);
  if (be) b.writeUInt16BE(v & 0xffff);
  else b.writeUInt16LE(v & 0xffff);
  return b;
}
function u32(v: number, be: boolean): Buffer {
  const b = Buffer.alloc(4);
  if (be) b.writeUInt32BE(v >>> 0);
  else b.writeUInt32LE(v >>> 0);
  return b;
}

function valueBytes(el: Element, enc: Enc): Buffer {
  const { vr, value } = el;
  if (typeof value === 'string') {
    let s = Buffer.from(value, 'latin1');
    if (s.length % 2) s = Buffer.concat([s, Buffer.from(vr === 'UI' ? '\0' : ' ')]);
    return s;
  }
  if (value instanceof Uint8Array && !(value instanceof Uint16Array)) {
    const b = Buffer.from(value);
    return b.length % 2 ? Buffer.concat([b, Buffer.alloc(1)]) : b;
  }
  if (value instanceof Uint16Array || value instanceof Int16Array) {
    const b = Buffer.alloc(value.length * 2);
    for (let i = 0; i < value.length; i++) {
      if (enc.bigEndian) b.writeUInt16BE(value[i] & 0xffff, 2 * i);
      else b.writeUInt16LE(value[i] & 0xffff, 2 * i);
    }
    return b;
  }
  const nums = value as number[];
  if (vr === 'US' || vr === 'SS') return Buffer.concat(nums.map((n) => u16(n, enc.bigEndian)));
  if (vr === 'UL') return Buffer.concat(nums.map((n) => u32(n, enc.bigEndian)));
  throw new Error(`test writer: no numeric encoding for ${vr}`);
}

function encodeElement(el: Element, enc: Enc): Buffer {
  const group = el.tag >>> 16;
  const elem = el.tag & 0xffff;
  const head = [u16(group, enc.bigEndian), u16(elem, enc.bigEndian)];
  if (el.vr === 'SQ') {
    const items = (el.value as Item[]).map((item) =>
      Buffer.concat([
        u16(0xfffe, enc.bigEndian),
        u16(0xe000, enc.bigEndian),
        u32(0xffffffff, enc.bigEndian),
        ...sortTags(item).map((e) => encodeElement(e, enc)),
        u16(0xfffe, enc.bigEndian),
        u16(0xe00d, enc.bigEndian),
        u32(0, enc.bigEndian),
      ]),
    );
    const end = Buffer.concat([u16(0xfffe, enc.bigEndian), u16(0xe0dd, enc.bigEndian), u32(0, enc.bigEndian)]);
    const len = enc.implicit
      ? [u32(0xffffffff, enc.bigEndian)]
      : [Buffer.from('SQ'), Buffer.alloc(2), u32(0xffffffff, enc.bigEndian)];
    return Buffer.concat([...head, ...len, ...items, end]);
  }
  const v = valueBytes(el, enc);
  if (enc.implicit) return Buffer.concat([...head, u32(v.length, false), v]);
  const vrBytes = Buffer.from(el.vr, 'ascii');
  return LONG_VRS.has(el.vr)
    ? Buffer.concat([...head, vrBytes, Buffer.alloc(2), u32(v.length, enc.bigEndian), v])
    : Buffer.concat([...head, vrBytes, u16(v.length, enc.bigEndian), v]);
}

function sortTags(els: Element[]): Element[] {
  return [...els].sort((a, b) => a.tag - b.tag);
}

/** Encapsulated pixel data: empty basic offset table, one fragment per frame. */
function encapsulated(frames: Uint8Array[]): Buffer {
  const item = (data: Uint8Array) => {
    const pad = data.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0);
    return Buffer.concat([
      u16(0xfffe, false),
      u16(0xe000, false),
      u32(data.length + pad.length, false),
      Buffer.from(data),
      pad,
    ]);
  };
  return Buffer.concat([
    u16(0x7fe0, false),
    u16(0x0010, false),
    Buffer.from('OB'),
    Buffer.alloc(2),
    u32(0xffffffff, false),
    item(new Uint8Array(0)),
    ...frames.map(item),
    u16(0xfffe, false),
    u16(0xe0dd, false),
    u32(0, false),
  ]);
}

export interface WriteOptions {
  transferSyntax?: string;
  /** false: no preamble and no file meta group (an old-style bare data set). Default true. */
  partTen?: boolean;
  /** Compressed frames: written as encapsulated pixel data. */
  frames?: Uint8Array[];
}

export function writeDicom(elements: Element[], opts: WriteOptions = {}): Buffer {
  const ts = opts.transferSyntax ?? TS.explicitLE;
  const enc: Enc = { implicit: ts === TS.implicitLE, bigEndian: ts === TS.explicitBE };
  let body = Buffer.concat(sortTags(elements).map((e) => encodeElement(e, enc)));
  if (opts.frames) body = Buffer.concat([body, encapsulated(opts.frames)]);
  if (opts.partTen === false) return body;
  if (ts === TS.deflatedLE) body = zlib.deflateRawSync(body);
  const metaEnc: Enc = { implicit: false, bigEndian: false };
  const meta = Buffer.concat(
    [
      { tag: 0x00020001, vr: 'OB', value: new Uint8Array([0, 1]) },
      { tag: 0x00020002, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1.1' },
      { tag: 0x00020003, vr: 'UI', value: '1.2.3.4.5.6.7.8.9' },
      { tag: 0x00020010, vr: 'UI', value: ts },
    ].map((e) => encodeElement(e, metaEnc)),
  );
  const groupLength = encodeElement({ tag: 0x00020000, vr: 'UL', value: [meta.length] }, metaEnc);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), groupLength, meta, body]);
}

export interface ImageSpec {
  rows: number;
  columns: number;
  bitsAllocated?: number;
  bitsStored?: number;
  signed?: boolean;
  photometric?: string;
  samples?: number;
  planar?: number;
  /** Native pixel data; omit for encapsulated frames or for "no pixel data". */
  pixels?: Uint8Array | Uint16Array | Int16Array;
  extra?: Element[];
}

/** The image pixel module (plus a few identifying tags) for a single-frame image. */
export function imageElements(s: ImageSpec): Element[] {
  const bitsAllocated = s.bitsAllocated ?? 16;
  const els: Element[] = [
    { tag: 0x00080060, vr: 'CS', value: 'CR' },
    { tag: 0x00100010, vr: 'PN', value: 'DOE^JANE' },
    { tag: 0x00100020, vr: 'LO', value: 'PATIENT-ID-4711' },
    { tag: 0x00180015, vr: 'CS', value: 'CHEST' },
    { tag: 0x00185101, vr: 'CS', value: 'PA' },
    { tag: 0x00280002, vr: 'US', value: [s.samples ?? 1] },
    { tag: 0x00280004, vr: 'CS', value: s.photometric ?? 'MONOCHROME2' },
    { tag: 0x00280010, vr: 'US', value: [s.rows] },
    { tag: 0x00280011, vr: 'US', value: [s.columns] },
    { tag: 0x00280100, vr: 'US', value: [bitsAllocated] },
    { tag: 0x00280101, vr: 'US', value: [s.bitsStored ?? bitsAllocated] },
    { tag: 0x00280102, vr: 'US', value: [(s.bitsStored ?? bitsAllocated) - 1] },
    { tag: 0x00280103, vr: 'US', value: [s.signed ? 1 : 0] },
  ];
  if (s.planar !== undefined) els.push({ tag: 0x00280006, vr: 'US', value: [s.planar] });
  if (s.pixels) els.push({ tag: 0x7fe00010, vr: bitsAllocated === 8 ? 'OB' : 'OW', value: s.pixels });
  const extra = s.extra ?? [];
  const tags = new Set(extra.map((e) => e.tag));
  return [...els.filter((e) => !tags.has(e.tag)), ...extra];
}

/** PackBits with literal runs only: valid DICOM RLE, simple to write. */
function packBits(bytes: Uint8Array): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 128) {
    const run = bytes.subarray(i, Math.min(bytes.length, i + 128));
    parts.push(Buffer.from([run.length - 1]), Buffer.from(run));
  }
  const out = Buffer.concat(parts);
  return out.length % 2 ? Buffer.concat([out, Buffer.from([128])]) : out; // 128 = no-op pad
}

/** A DICOM RLE Lossless frame of 8- or 16-bit single-sample pixels. */
export function rleFrame(pixels: Uint8Array | Uint16Array): Uint8Array {
  const planes: Uint8Array[] =
    pixels instanceof Uint16Array
      ? [Uint8Array.from(pixels, (v) => v >> 8), Uint8Array.from(pixels, (v) => v & 0xff)]
      : [pixels];
  return rlePlanes(planes);
}

/** A DICOM RLE Lossless frame of the given 8-bit planes, one segment each (a colour film: R, G, B or Y, Cb, Cr). */
export function rlePlanes(planes: Uint8Array[]): Uint8Array {
  const segments = planes.map(packBits);
  const header = Buffer.alloc(64);
  header.writeUInt32LE(segments.length, 0);
  let offset = 64;
  segments.forEach((s, i) => {
    header.writeUInt32LE(offset, 4 + 4 * i);
    offset += s.length;
  });
  return Buffer.concat([header, ...segments]);
}

interface WasmEncoder {
  getDecodedBuffer(info: object): Uint8Array;
  getEncodedBuffer(): Uint8Array;
  encode(): void;
  delete(): void;
}

export async function wasmEncode(
  kind: 'charls' | 'openjpeg',
  px: Uint16Array,
  width: number,
  height: number,
  bits: number,
): Promise<Uint8Array> {
  const mod = kind === 'charls' ? '@cornerstonejs/codec-charls/wasmjs' : '@cornerstonejs/codec-openjpeg/wasmjs';
  const lib = await (require(mod) as (m: object) => Promise<Record<string, new () => WasmEncoder>>)({
    print() {},
    printErr() {},
  });
  const enc = new lib[kind === 'charls' ? 'JpegLSEncoder' : 'J2KEncoder']();
  try {
    const input = enc.getDecodedBuffer({
      width,
      height,
      bitsPerSample: bits,
      componentCount: 1,
      isSigned: false,
      isUsingColorTransform: false,
    });
    input.set(new Uint8Array(px.buffer, px.byteOffset, px.byteLength));
    enc.encode();
    return enc.getEncodedBuffer().slice();
  } finally {
    enc.delete();
  }
}
