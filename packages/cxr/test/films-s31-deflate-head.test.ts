// POST /jobs keys each film by its SOP Instance UID (queue/job.ts sopInstanceUid), on the request thread. A deflated
// DICOM (transfer syntax 1.2.840.10008.1.2.1.99) was inflated whole to read that UID from its first bytes: one just
// under the decoder's inflate cap (~100 MB of zeros from ~100 KB) held the thread 200-300 ms a film on the 2-core
// build machine. The UID is read from the data set's head alone now (data/dicom_data_set.ts headInflater): a few
// milliseconds, a few MiB inflated whatever the film's size. The film is written to a temp dir, as an upload is
// received; the bytes inflated are counted at Node's zlib, which the readers call through its module's export.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DEFAULT_LIMITS } from '../src/data/decode';
import { HEAD_INFLATE_BYTES, inflateCap } from '../src/data/dicom_data_set';
import { readHeader } from '../src/dicom_out/part10';
import { resultKeyOf, sopInstanceUid } from '../src/queue/job';
import { type Element, TS, writeDicom } from './dicom-writer';
import { tempDir } from './serve-fixtures';

const UID = '1.2.826.0.1.3680043.8.498.31';
/**
 * The most the head read may inflate, all steps together: the last step up to 4 × HEAD_INFLATE_BYTES, each one
 * before it under HEAD_INFLATE_BYTES (a couple of them for films of zeros). The whole was ~100 MB.
 */
const MOST_INFLATED = 8 * HEAD_INFLATE_BYTES;
let dir: string;

before(() => {
  dir = tempDir('films-s31-deflate');
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A Part-10 file, deflated, whose data set is `elements` then a private OB element of `bytes` zeros: each MiB of
 * zeros deflated alone, sync-flushed, so that no more than a MiB of them is ever in memory here.
 */
function deflated(elements: Element[], bytes: number): Buffer {
  const plain = writeDicom(elements, { partTen: false });
  const whole = writeDicom(elements, { transferSyntax: TS.deflatedLE });
  const meta = whole.subarray(0, whole.length - zlib.deflateRawSync(plain).length);
  const obHeader = Buffer.from([0x09, 0x00, 0x10, 0x10, 0x4f, 0x42, 0, 0, 0, 0, 0, 0]);
  obHeader.writeUInt32LE(bytes, 8);
  const flush = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
  const mib = Math.floor(bytes / 2 ** 20);
  const mebibyte = zlib.deflateRawSync(Buffer.alloc(2 ** 20), flush);
  return Buffer.concat([
    meta,
    zlib.deflateRawSync(Buffer.concat([plain, obHeader]), flush),
    ...Array.from({ length: mib }, () => mebibyte),
    zlib.deflateRawSync(Buffer.alloc(bytes - mib * 2 ** 20)),
  ]);
}

/** `work`'s answer, the bytes Node's zlib inflated for it, and how long it held the thread. */
function counted<T>(work: () => T): { value: T; inflated: number; ms: number } {
  const z = require('node:zlib') as typeof zlib;
  const real = z.inflateRawSync;
  let inflated = 0;
  z.inflateRawSync = ((buf: zlib.InputType, options?: zlib.ZlibOptions) => {
    const out = real(buf, options);
    inflated += out.length;
    return out;
  }) as typeof real;
  try {
    const start = process.hrtime.bigint();
    const value = work();
    return { value, inflated, ms: Number(process.hrtime.bigint() - start) / 1e6 };
  } finally {
    z.inflateRawSync = real;
  }
}

test('a deflated film just under the inflate cap is keyed by its UID from its head alone', (t) => {
  const cap = inflateCap(DEFAULT_LIMITS);
  const file = path.join(dir, 'under-cap.dcm');
  fs.writeFileSync(file, deflated([{ tag: 0x00080018, vr: 'UI', value: UID }], cap - 64 * 1024));
  const bytes = fs.readFileSync(file);
  assert.ok(bytes.length < 256 * 1024, `${bytes.length} bytes`);
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { value, inflated, ms } = counted(() => sopInstanceUid(bytes));
    assert.equal(value, UID);
    assert.ok(inflated <= MOST_INFLATED, `${inflated} bytes inflated to read the UID`);
    times.push(ms);
  }
  const shown = times.map((ms) => ms.toFixed(1)).join(', ');
  t.diagnostic(`sopInstanceUid of a deflated film inflating to ${cap - 64 * 1024} bytes: ${shown} ms`);
  // The decoder still reads (and caps) the whole: the full header read names the cap past it.
  assert.equal(String(readHeader(bytes, { text: false }).SOPInstanceUID), UID);
});

test('past the cap a deflated film is keyed by its UID too (the worker refuses it); the full read refuses it', () => {
  const cap = inflateCap(DEFAULT_LIMITS);
  const bomb = deflated([{ tag: 0x00080018, vr: 'UI', value: UID }], cap + 16 * 2 ** 20);
  const { value, inflated } = counted(() => resultKeyOf(bomb));
  assert.equal(value, UID);
  assert.ok(inflated <= MOST_INFLATED, `${inflated} bytes inflated`);
  assert.throws(() => readHeader(bomb, { text: false }), new RegExp(`inflates to more than ${cap} bytes`));
});

test('a UID past the head of a deflated data set keys none, without inflating the rest', () => {
  // 6 MiB of an earlier element (a hostile or broken header) before the UID, past the most the head read
  // inflates (4 × HEAD_INFLATE_BYTES): keyed by the film's bytes.
  const elements: Element[] = [
    { tag: 0x00080008, vr: 'UT', value: 'A'.repeat(6 * 2 ** 20) },
    { tag: 0x00080018, vr: 'UI', value: UID },
  ];
  const film = deflated(elements, 8 * 2 ** 20);
  const part10 = require('../src/dicom_out/part10') as { readHeader: typeof readHeader };
  const real = part10.readHeader;
  let fullReads = 0;
  part10.readHeader = (...args) => {
    fullReads++;
    return real(...args);
  };
  try {
    const { value, inflated } = counted(() => sopInstanceUid(film));
    assert.equal(value, null);
    assert.equal(fullReads, 0, 'the full read ran');
    assert.ok(inflated <= MOST_INFLATED, `${inflated} bytes inflated`);
    assert.match(resultKeyOf(film), /^sha256:[0-9a-f]{64}$/);
  } finally {
    part10.readHeader = real;
  }
  // A UID within the head, a film of any other size: read.
  assert.equal(sopInstanceUid(deflated([{ tag: 0x00080018, vr: 'UI', value: UID }], 1000)), UID);
});
