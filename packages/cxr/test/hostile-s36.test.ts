// This session's new input and output paths, attacked as a hostile or careless sender would (session 36): Modality
// LUT Sequences that do not add up, FOR PROCESSING said oddly, a model name that breaks the heat map's SVG or its
// wrap, a cxr.json nested 10,000 levels, and odd client addresses for the wrong-token throttle and --trust-proxy.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { DicomError, decodeDicom } from '../src/data/dicom';
import { isForProcessingImage } from '../src/data/for_processing';
import { buildSr } from '../src/dicom_out';
import { annotateHeatmap, wrap } from '../src/dicom_out/overlay';
import { buildSecondaryCapture } from '../src/dicom_out/secondary_capture';
import { buildApp } from '../src/serve/app';
import { AuthThrottle, clientKey } from '../src/serve/auth_throttle';
import { MAX_META_DEPTH, publicMeta, TOO_DEEP } from '../src/serve/public_meta';
import { TrustProxyError, trustedProxies } from '../src/serve/trust_proxy';
import { type Element, imageElements, TS, writeDicom } from './dicom-writer';
import { samplePrediction, sampleResult } from './result-input';
import { serverParts } from './serve-fixtures';

const W = 64;
const H = 48;
const N = W * H;
/** Stored 0..255 across each row of 256 pixels. */
const RAMP = Uint16Array.from({ length: N }, (_, i) => i % 256);
/** A LUT over 0..255 that inverts: stored 0 → 4000, 255 → 1450. */
const INVERTING = Uint16Array.from({ length: 256 }, (_, v) => 4000 - 10 * v);

const sequence = (tag: number, items: Element[][]): Element => ({ tag, vr: 'SQ', value: items });
const modalityLut = (descriptor: Element | null, data: Element | null): Element =>
  sequence(0x00283000, [[descriptor, data].filter((e): e is Element => e !== null)]);
const descriptorOf = (entries: number, first: number, bits: number, vr = 'US'): Element => ({
  tag: 0x00283002,
  vr,
  value: [entries, first & 0xffff, bits],
});
const dataOf = (value: Uint16Array | Uint8Array): Element => ({ tag: 0x00283006, vr: 'OW', value });

function film(extra: Element[], opts: { pixels?: Uint16Array | Int16Array; signed?: boolean; ts?: string } = {}) {
  const pixels = opts.pixels ?? RAMP;
  return decodeDicom(
    writeDicom(imageElements({ rows: H, columns: W, bitsStored: 12, signed: opts.signed, pixels, extra }), {
      transferSyntax: opts.ts,
    }),
  );
}

/** The decoder's refusal of a film: a DicomError with `code` (never a raw TypeError or RangeError). */
async function refused(extra: Element[], code: string, what: string): Promise<void> {
  try {
    await film(extra);
  } catch (e) {
    assert.ok(e instanceof DicomError, `${what}: a DicomError, not ${(e as Error).name}`);
    assert.equal(e.code, code, what);
    return;
  }
  assert.fail(`${what}: decoded, not refused`);
}

test('a Modality LUT that cannot be applied is refused (CORRUPT), not passed over into an inverted film', async () => {
  // Before: each was passed over, the stored values shown as they are: the inverting LUT's film came out inverted
  // (stored 0 black where a viewer shows it white) and was assessed.
  await refused([modalityLut(descriptorOf(4096, 0, 12), dataOf(INVERTING))], 'CORRUPT', 'LUT Data shorter');
  await refused([modalityLut(descriptorOf(0, 0, 16), dataOf(INVERTING))], 'CORRUPT', '0 entries (65,536), short');
  await refused([modalityLut(descriptorOf(256, 0, 0), dataOf(INVERTING))], 'CORRUPT', '0 bits');
  await refused([modalityLut(descriptorOf(256, 0, 17), dataOf(INVERTING))], 'CORRUPT', '17 bits');
  await refused([modalityLut(descriptorOf(256, 0, 12), null)], 'CORRUPT', 'an item without LUT Data');
  await refused([modalityLut(null, dataOf(INVERTING))], 'CORRUPT', 'an item without a descriptor');
  const oneValue: Element = { tag: 0x00283002, vr: 'US', value: [256] };
  await refused([modalityLut(oneValue, dataOf(INVERTING))], 'CORRUPT', 'a descriptor of one value');
  await refused([modalityLut(descriptorOf(256, 0, 12), dataOf(new Uint16Array(0)))], 'CORRUPT', 'empty LUT Data');
});

test('a Modality LUT that can be applied is: 8-bit entries in OW, a signed first input, no item', async () => {
  // 8-bit entries packed one a byte in OW: applied (inverted), not refused.
  const packed = await film([modalityLut(descriptorOf(256, 0, 8), dataOf(Uint8Array.from(INVERTING, (v) => v >> 4)))]);
  assert.ok(
    packed.gray[0] === 255 && packed.gray[255] === 0,
    `8-bit LUT applied: ${packed.gray[0]}, ${packed.gray[255]}`,
  );
  // Signed pixels −128..127 through a LUT whose first input is −128 (SS): −128 is its first entry.
  const signedPx = Int16Array.from({ length: N }, (_, i) => (i % 256) - 128);
  const signed = await film([modalityLut(descriptorOf(256, -128, 12, 'SS'), dataOf(INVERTING))], {
    pixels: signedPx,
    signed: true,
  });
  assert.ok(signed.gray[0] === 255 && signed.gray[255] === 0, `signed first value: ${signed.gray[0]}`);
  // An empty sequence, and an empty item, say nothing: the film is its stored values (no rescale given).
  for (const extra of [sequence(0x00283000, []), sequence(0x00283000, [[]])]) {
    const plain = await film([extra]);
    assert.ok(plain.gray[0] === 0 && plain.gray[255] === 255, 'no LUT: stored 0 black');
  }
  // A first input past every stored value: each pixel is the first entry, a flat film (bounded, no throw).
  const flat = await film([modalityLut(descriptorOf(256, 65535, 12), dataOf(INVERTING))]);
  assert.ok(
    flat.gray.every((v) => v === flat.gray[0]),
    'a flat film',
  );
  // A Modality LUT and a VOI LUT: the VOI LUT over the Modality LUT's output (1450..4000, >> 4 as 8 bits).
  const voi = sequence(0x00283010, [
    [descriptorOf(4096, 0, 8), dataOf(Uint16Array.from({ length: 4096 }, (_, i) => i >> 4))],
  ]);
  const both = await film([modalityLut(descriptorOf(256, 0, 12), dataOf(INVERTING)), voi]);
  assert.equal(both.voi, 'voi-lut');
  assert.equal(both.gray[0], 4000 >> 4);
  assert.equal(both.gray[255], 1450 >> 4);
  // A window of no finite number over the LUT's output is no window: the values' range, not a black film.
  const infinite: Element[] = [
    { tag: 0x00281050, vr: 'DS', value: '1e309' },
    { tag: 0x00281051, vr: 'DS', value: '100' },
  ];
  const stretched = await film([modalityLut(descriptorOf(256, 0, 12), dataOf(INVERTING)), ...infinite], {
    ts: TS.implicitLE,
  });
  assert.equal(stretched.voi, 'min-max');
  assert.ok(stretched.gray[0] === 255 && stretched.gray[255] === 0, 'implicit VR: the LUT applied, min-max');
});

test('FOR PROCESSING said oddly: lower case, runs of spaces, NULs, several values, an over-long value', async () => {
  for (const intent of ['for processing', 'FOR  PROCESSING', '\0FOR PROCESSING\0', 'FOR PRESENTATION\\FOR PROCESSING'])
    assert.ok(isForProcessingImage({ presentationIntent: intent }), JSON.stringify(intent));
  assert.ok(isForProcessingImage({ sopClassUid: '1.2.3\\1.2.840.10008.5.1.4.1.1.1.1.1 ' }), 'several SOP classes');
  assert.ok(!isForProcessingImage({ presentationIntent: 'FOR PRESENTATION', sopClassUid: 'x'.repeat(1e6) }));
  assert.ok(!isForProcessingImage({ presentationIntent: 'FOR_PROCESSING' }), 'no such code string');
  // The decoder reads the same: a DX film whose intent has a second value FOR PROCESSING is one.
  const img = await film([{ tag: 0x00080068, vr: 'CS', value: 'FOR PRESENTATION\\FOR PROCESSING' }]);
  assert.equal(img.forProcessing, true);
});

test('wrap: a word longer than the line is cut into lines; no-break spaces alone and an empty line give none', () => {
  const lines = wrap(`model ${'a'.repeat(10_000)} v1`, 60);
  assert.ok(
    lines.every((l) => l.length <= 60),
    `a line of ${Math.max(...lines.map((l) => l.length))} characters`,
  );
  assert.equal(lines.join('').replace(/[^a]/g, '').length, 10_000, 'nothing lost');
  assert.deepEqual(wrap('\u00a0\u00a0\u00a0', 20), []);
  assert.deepEqual(wrap('', 20), []);
  assert.deepEqual(wrap('18.0\u00a0% p\u00a0≥\u00a015.7\u00a0%', 12), ['18.0\u00a0%', 'p\u00a0≥\u00a015.7\u00a0%']);
  // A surrogate pair is never cut in two.
  assert.ok(
    wrap('😀'.repeat(50), 7).every((l) => !/[\ud800-\udbff]$/.test(l)),
    'a pair cut',
  );
});

const hostileNames = [
  'model\u0001\u0002\u001b\u0000name',
  'bad\ufffeversion',
  '<script>alert(1)</script>&"',
  '\u202emodel\u200f',
  'x\ud800y',
];

test('the heat map is drawn whatever the model name: control characters, U+FFFE, "<script>", RTL marks', async () => {
  const png = await sharp64();
  // Before: a control character or U+FFFE made librsvg refuse the SVG ("PCDATA invalid Char"): no heat map stored.
  for (const name of hostileNames) {
    const img = await annotateHeatmap(png, ['caveat', `${name} 1.0: result`]);
    assert.ok(img.width >= 420 && img.rgb.length === img.width * img.height * 3, JSON.stringify(name));
  }
});

const resultInput = (name: string, version: string) => sampleResult(samplePrediction(), { name, version });

test('the SC and SR are written for a hostile model name and version (10,000 characters, controls)', async () => {
  const png = await sharp64();
  for (const [name, version] of [
    [hostileNames[0], hostileNames[1]],
    ['n'.repeat(10_000), 'v'.repeat(10_000)],
  ]) {
    const sc = await buildSecondaryCapture(resultInput(name, version), png);
    assert.ok(sc.bytes.length > 1000, 'an SC');
    const sr = buildSr(resultInput(name, version));
    // The SR's Result text is the card's words, not the name: within ST's 1,024 characters, let alone UT's.
    assert.ok(Buffer.from(sr.bytes).includes(Buffer.from('Above the pneumonia threshold')), 'the Result text');
  }
});

async function sharp64(): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  return sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 9, g: 9, b: 9 } } })
    .png()
    .toBuffer();
}

test('publicMeta: 10,000 levels of nesting, 100,000 entries, a 1 MB path: no stack overflow, bounded time', () => {
  let deep: unknown = { root: '/mnt/secret/data' };
  for (let i = 0; i < 10_000; i++) deep = i % 2 ? { o: deep } : [deep];
  // Before: "Maximum call stack size exceeded" at server start.
  const shown = publicMeta({ deep }) as { deep: unknown };
  let level: unknown = shown.deep;
  let depth = 1;
  while (level !== null && typeof level === 'object') {
    level = Array.isArray(level) ? level[0] : (level as { o: unknown }).o;
    depth++;
  }
  assert.equal(level, TOO_DEEP);
  assert.equal(depth, MAX_META_DEPTH);
  assert.ok(JSON.stringify(shown).length < 10_000, 'what is shown stays small');
  // Shallow paths are still reduced; a 1 MB path and a large array take bounded time.
  const started = Date.now();
  const big = publicMeta({
    data: { root: `/${'a/'.repeat(500_000)}films` },
    list: Array.from({ length: 100_000 }, (_, i) => `/mnt/x/${i}`),
  });
  assert.equal(big.data.root, 'films');
  assert.equal(big.list[7], '7');
  assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
});

test('clientKey: a mapped IPv4 address in hex is that address; odd strings neither throw nor stall', () => {
  // Before: '::ffff:a00:1' counted as the /64 of every mapped address: one client's wrong tokens refused them all.
  assert.equal(clientKey('::ffff:a00:1'), '10.0.0.1');
  assert.equal(clientKey('::FFFF:0A00:0002'), '10.0.0.2');
  assert.equal(clientKey('::ffff:10.0.0.1'), '10.0.0.1');
  assert.equal(clientKey('fe80::1%eth0'), clientKey('fe80::2'), 'a zone id cut off, the /64 kept');
  for (const odd of ['', ':::::', '1::2::3', '%', 'garbage', '1.2.3.4, 5.6.7.8', '::ffff:999.1.1.1'])
    assert.equal(typeof clientKey(odd), 'string', JSON.stringify(odd));
  // Before: /%.*$/ took time in the square of the length (seconds for this string).
  const started = Date.now();
  clientKey(`${'%'.repeat(100_000)}\nx`);
  assert.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
  // The throttle keeps an odd address apart from a real one.
  const throttle = new AuthThrottle({ maxFailures: 1 });
  throttle.fail(':::::', 'Bearer a');
  assert.ok(throttle.retryAfterS(':::::') > 0 && throttle.retryAfterS('10.0.0.1') === 0);
});

test('--trust-proxy: a list with spaces, a zone id, a /0 by another spelling', () => {
  assert.deepEqual(trustedProxies([' 10.0.0.1 , 10.0.0.2 ']), ['10.0.0.1', '10.0.0.2']);
  assert.throws(() => trustedProxies(['10.0.0.1 10.0.0.2']), TrustProxyError, 'separated by a space: refused');
  assert.throws(() => trustedProxies(['0.0.0.0/00']), TrustProxyError);
  assert.throws(() => trustedProxies(['::/0']), TrustProxyError);
  assert.throws(() => trustedProxies(['10.0.0.1,,']), TrustProxyError);
  assert.deepEqual(trustedProxies(['fe80::1%eth0']), ['fe80::1%eth0']);
});

const parts = serverParts('hostile-s36');
const apps: FastifyInstance[] = [];
after(async () => {
  for (const a of apps) await a.close();
});

test('X-Forwarded-For of 10,000 entries or garbage from a trusted proxy: answered, throttled per client', async () => {
  const app = await buildApp({
    predictor: parts.predictor,
    audit: parts.audit,
    webDir: null,
    tokens: [{ name: 'ward', token: 'right-token-hostile-0123456789' }],
    authThrottle: { maxFailures: 2, windowMs: 60_000 },
    trustProxy: ['127.0.0.1'],
  });
  apps.push(app);
  const ask = (xff: string, i: number) =>
    app.inject({
      url: '/api/v1/model',
      remoteAddress: '127.0.0.1',
      headers: { authorization: `Bearer wrong-${i}`, 'x-forwarded-for': xff },
    });
  const long = Array.from({ length: 10_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`).join(',');
  const started = Date.now();
  for (const xff of [long, 'garbage, :::::, %%%', 'fe80::1%eth0']) {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await ask(xff, i)).statusCode);
    assert.deepEqual(statuses, [401, 401, 429], `${xff.slice(0, 30)}: ${statuses}`);
  }
  assert.ok(Date.now() - started < 10_000, `${Date.now() - started} ms`);
});
