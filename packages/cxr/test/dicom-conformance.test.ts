// dicom_out checked the way a PACS administrator checks it, with DCMTK (apt package dcmtk): the reports and
// heat maps cxr writes for real films (an adult's, one without PatientAge, a lossy JPEG-LS film at an offset,
// Latin-1 and Cyrillic names, a blank film it cannot assess) pass dsrdump and DCMTK's SR schema, carry the
// attributes of their IODs, keep the film's patient and study, and say what the prediction says.
// Skipped, with the reason, where DCMTK is not installed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildResults, derivedUid, isUid, readSource } from '../src/dicom_out';
import { type Prediction, Predictor } from '../src/predict/predictor';
import { type Element, TS, writeDicom } from './dicom-writer';
import { DICOM_DIR, DICOM_FILE, makeTinyModel, tempDir } from './serve-fixtures';

const TOOLS = ['dsrdump', 'dsr2xml', 'xml2dsr', 'dcmdump', 'dcmodify'];
const missing = TOOLS.filter((t) => spawnSync('which', [t]).status !== 0);
const SCHEMA_DIR = ['/usr/share/dcmtk', ...safeList('/usr/share').map((d) => `/usr/share/${d}`)].find((d) =>
  fs.existsSync(path.join(d, 'dsr2xml.xsd')),
);
const skip = missing.length
  ? `DCMTK is not installed (no ${missing.join(', ')} on PATH): apt-get install dcmtk`
  : !SCHEMA_DIR
    ? 'DCMTK is installed without its dsr2xml.xsd (looked in /usr/share/dcmtk*)'
    : !fs.existsSync(DICOM_FILE)
      ? `no sample films (${DICOM_DIR})`
      : false;

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((d) => d.startsWith('dcmtk'));
  } catch {
    return [];
  }
}

interface Case {
  name: string;
  film: string;
  prediction: Prediction;
  sr: string;
  sc: string | null;
}

let dir = '';
let predictor: Predictor | undefined;
const cases: Case[] = [];

/** stdout and stderr of a DCMTK tool; throws with both when it exits non-zero. */
function run(tool: string, args: string[], cwd?: string): { out: string; err: string } {
  const r = spawnSync(tool, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} exited ${r.status}:\n${r.stderr}${r.stdout}`);
  return { out: r.stdout, err: r.stderr };
}

/** DCMTK's messages, less the one note every UTF-8 file gets (its VR checker has no UTF-8 support). */
const problems = (err: string) =>
  err.split('\n').filter((l) => /^[WEF]:/.test(l) && !/VR checker does not support .*ISO_IR 192/.test(l));

/** Top-level attributes of a file as dcmdump shows them (text as UTF-8), keyed by tag "gggg,eeee". */
function attributes(file: string): Map<string, { vr: string; value: string }> {
  const { out, err } = run('dcmdump', ['+E', '+U8', '+L', '-M', file]);
  assert.deepEqual(problems(err), [], `dcmdump +E ${file}`);
  const map = new Map<string, { vr: string; value: string }>();
  for (const line of out.split('\n')) {
    const m = /^\(([0-9a-f]{4},[0-9a-f]{4})\) (\w\w) (?:\[(.*?)\]|=(\S+)|(.*?))\s+#/.exec(line);
    if (m) map.set(m[1], { vr: m[2], value: m[3] ?? m[4] ?? (/no value/.test(m[5] ?? '') ? '' : (m[5] ?? '')) });
  }
  return map;
}

/**
 * A copy of a sample film with attributes set by dcmodify: a string is inserted as it is (ASCII), a Buffer's
 * bytes are inserted as they are (a name in the film's own character set, e.g. Latin-1 or Cyrillic).
 */
function variant(name: string, from: string, changes: Record<string, string | Buffer>): string {
  const file = path.join(dir, `${name}.dcm`);
  fs.copyFileSync(from, file);
  // A film of its own (its results' UIDs derive from its SOP Instance UID), in the study of the one copied.
  const sop = derivedUid('dicom-conformance film', name);
  const all: Record<string, string | Buffer> = { '(0008,0018)': sop, ...changes }; // dcmodify updates the meta
  const args = Object.entries(all).flatMap(([tag, v], i) => {
    if (typeof v === 'string') return ['-i', `${tag}=${v}`];
    const valueFile = path.join(dir, `${name}.${i}.value`);
    // dcmodify takes only even lengths from a file: a text value is padded with a space, as DICOM pads it.
    fs.writeFileSync(valueFile, v.length % 2 ? Buffer.concat([v, Buffer.from(' ')]) : v);
    return ['-if', `${tag}=${valueFile}`];
  });
  execFileSync('dcmodify', ['-nb', ...args, file]);
  return file;
}

before(async () => {
  if (skip) return;
  dir = tempDir('dicom-conformance');
  predictor = await Predictor.load(await makeTinyModel(path.join(dir, 'model')), { warmUp: false });
  const latin1 = (s: string) => Buffer.from(s, 'latin1');
  const gdcm = path.join(DICOM_DIR, 'gdcm-CR-MONO1-10-chest.dcm');
  // The gdcm film is uncompressed 440×440, 16 bits: its last bytes are the pixels, made one gray.
  const blank = variant('blank', gdcm, {});
  const bytes = fs.readFileSync(blank);
  bytes.fill(0x02, bytes.length - 440 * 440 * 2);
  fs.writeFileSync(blank, bytes);
  const films: Record<string, string> = {
    adult: DICOM_FILE, // PatientAge 62: outside the population; JPEG baseline, lossy
    noAge: gdcm, // no PatientAge, no birth date, no character set
    lossyOffset: path.join(DICOM_DIR, 'WG04_RG1_JLSN.dcm'), // age from dates, JPEG-LS near-lossless, -0400
    latin1: variant('latin1', DICOM_FILE, {
      '(0010,0010)': latin1('Müller^Jürgen'),
      '(0010,1010)': '003Y',
      '(0008,1030)': latin1('Thorax p.a. évaluation'),
    }),
    cyrillic: variant('cyrillic', gdcm, {
      '(0008,0005)': 'ISO_IR 144',
      '(0010,0010)': Buffer.from([0xbb, 0xee, 0xdc, 0xd0, 0xdd, 0x5e, 0xb8, 0xd2, 0xd0, 0xdd]),
    }),
    blank,
  };
  for (const [name, film] of Object.entries(films)) {
    const filmBytes = fs.readFileSync(film);
    const prediction = await predictor.predict(filmBytes, { heatmap: true });
    const model = { name: predictor.model.name, version: predictor.model.version, sha256: predictor.model.sha256 };
    const { sr, sc } = await buildResults({ source: readSource(filmBytes), prediction, model });
    const out = (kind: string, b: Buffer) => {
      const f = path.join(dir, `${name}.${kind}.dcm`);
      fs.writeFileSync(f, b);
      return f;
    };
    cases.push({ name, film, prediction, sr: out('sr', sr.bytes), sc: sc ? out('sc', sc.bytes) : null });
  }
});
after(() => {
  predictor?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the films cover each verdict', { skip }, () => {
  const status = Object.fromEntries(cases.map((c) => [c.name, c.prediction.verdict.status]));
  assert.equal(status.adult, 'outside-population');
  assert.equal(status.lossyOffset, 'outside-population');
  assert.equal(status.blank, 'cannot-assess');
  assert.equal(status.latin1, 'assessed');
});

test('each report passes dsrdump with its constraints and DCMTK SR schema', { skip }, () => {
  for (const c of cases) {
    const dump = run('dsrdump', ['+U8', '+Pl', c.sr]);
    assert.deepEqual(problems(dump.err), [], `dsrdump ${c.name}`);
    // dsr2xml writes the document as XML; xml2dsr +Vs validates it against dsr2xml.xsd, which holds the
    // VR limits of every content item (a Code Value over 16 characters fails here, not in dsrdump).
    const xml = path.join(dir, `${c.name}.sr.xml`);
    fs.writeFileSync(xml, run('dsr2xml', ['+Xn', '+Xs', c.sr]).out);
    const r = spawnSync('xml2dsr', ['+Vs', xml, path.join(dir, `${c.name}.back.dcm`)], {
      cwd: SCHEMA_DIR,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `${c.name}: xml2dsr +Vs: ${r.stderr}`);
  }
});

test('each report says what the prediction says', { skip }, () => {
  for (const c of cases) {
    const p = c.prediction;
    const text = run('dsrdump', ['+U8', '+Pl', c.sr]).out;
    const meaning = {
      assessed: 'Assessed',
      'cannot-assess': 'Cannot be assessed',
      'outside-population': 'Outside the intended population',
    }[p.verdict.status];
    assert.ok(text.includes(`"Assessment status")=(`) && text.includes(`"${meaning}")>`), `${c.name}: ${meaning}`);
    const probability = `"Calibrated probability of pneumonia")="${p.probability.toFixed(6)}"`;
    assert.equal(text.includes(probability), p.verdict.status !== 'cannot-assess', `${c.name}: probability`);
    const finding = p.label === 'PNEUMONIA' ? '"Yes")>' : '"No")>';
    const shown = text.includes(`"Pneumonia")=`) && text.includes(finding);
    assert.equal(shown, p.verdict.status === 'assessed', `${c.name}: a finding only when assessed`);
    assert.ok(text.includes(`"Decision threshold")="${p.threshold.toFixed(6)}"`), c.name);
    assert.ok(text.includes(`"Operating point")="${p.operatingPoint}"`), c.name);
    for (const r of p.verdict.reasons) assert.ok(text.includes(`="${r.message}"`), `${c.name}: ${r.message}`);
  }
});

const SC_REQUIRED = {
  // General Series, SC Equipment, General Image, Image Pixel, SC Image, SOP Common; Patient, General Study.
  type1: ['0008,0016', '0008,0018', '0008,0060', '0020,000e', '0008,0064', '0028,0002', '0028,0004'],
  pixel: ['0028,0006', '0028,0010', '0028,0011', '0028,0100', '0028,0101', '0028,0102', '0028,0103'],
  type2: ['0010,0010', '0010,0020', '0010,0030', '0010,0040', '0020,000d', '0008,0020', '0008,0030'],
  type2more: ['0008,0090', '0020,0010', '0008,0050', '0020,0011', '0008,0070', '0020,0013', '0020,0020'],
};

test('each heat map has the attributes of a Secondary Capture and an 8-bit RGB image', { skip }, () => {
  const withMap = cases.filter((c) => c.sc);
  assert.ok(withMap.length >= 4, 'heat maps for the readable films');
  for (const c of withMap) {
    const a = attributes(c.sc!);
    for (const tag of [...SC_REQUIRED.type1, ...SC_REQUIRED.pixel]) {
      assert.ok(a.get(tag)?.value, `${c.name}: Type 1 ${tag} has a value`);
    }
    for (const tag of [...SC_REQUIRED.type2, ...SC_REQUIRED.type2more]) assert.ok(a.has(tag), `${c.name}: ${tag}`);
    const pixel = ['0028,0002', '0028,0004', '0028,0006', '0028,0100', '0028,0101', '0028,0102', '0028,0103'];
    assert.deepEqual(
      pixel.map((t) => a.get(t)?.value),
      ['3', 'RGB', '0', '8', '8', '7', '0'],
      c.name,
    );
  }
});

test('a heat map over a lossy compressed film says it is lossy, with the film method', { skip }, () => {
  for (const c of cases.filter((x) => x.sc)) {
    const film = attributes(c.film);
    const a = attributes(c.sc!);
    const lossy = film.get('0028,2110')?.value === '01';
    assert.equal(a.get('0028,2110')?.value, lossy ? '01' : '00', `${c.name}: Lossy Image Compression`);
    for (const tag of ['0028,2112', '0028,2114']) assert.equal(a.get(tag)?.value, film.get(tag)?.value, c.name);
  }
  assert.ok(
    cases.some((c) => c.sc && c.name === 'adult'),
    'the JPEG baseline film has a heat map',
  );
});

test('a film sent in JPEG baseline is lossy even where its header does not say so', () => {
  const header = (lossy: string | null): Element[] => [
    { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1' },
    { tag: 0x00080018, vr: 'UI', value: '1.2.826.0.1.3680043.8.498.1' },
    { tag: 0x0020000d, vr: 'UI', value: '1.2.826.0.1.3680043.8.498.2' },
    { tag: 0x0020000e, vr: 'UI', value: '1.2.826.0.1.3680043.8.498.3' },
    ...(lossy === null ? [] : [{ tag: 0x00282110, vr: 'CS' as const, value: lossy }]),
  ];
  const lossyOf = (lossy: string | null, transferSyntax: string) =>
    readSource(writeDicom(header(lossy), { transferSyntax })).lossyCompression;
  const jpeg = { methods: ['ISO_10918_1'], ratios: [] };
  assert.deepEqual(lossyOf(null, '1.2.840.10008.1.2.4.50'), jpeg, 'no Lossy Image Compression');
  assert.deepEqual(lossyOf('00', '1.2.840.10008.1.2.4.50'), jpeg, 'a header that says 00');
  assert.deepEqual(lossyOf('01', '1.2.840.10008.1.2.4.50'), { methods: [], ratios: [] }, 'as the header says');
  assert.equal(lossyOf(null, TS.explicitLE), undefined, 'uncompressed, nothing said: not lossy');
});

test('both keep the film patient and study, and have new valid UIDs that refer to the film', { skip }, () => {
  const seen = new Set<string>();
  for (const c of cases) {
    const film = attributes(c.film);
    const sopUid = film.get('0008,0018')!.value;
    for (const file of [c.sr, c.sc].filter((f): f is string => f !== null)) {
      const a = attributes(file);
      for (const tag of ['0010,0010', '0010,0020', '0010,0030', '0010,0040', '0020,000d', '0008,0020', '0008,1030']) {
        assert.equal(a.get(tag)?.value ?? '', film.get(tag)?.value ?? '', `${c.name} ${path.basename(file)} ${tag}`);
      }
      for (const tag of ['0020,000e', '0008,0018']) {
        const uid = a.get(tag)!.value;
        assert.ok(isUid(uid) && uid !== film.get(tag)?.value, `${c.name}: ${tag} ${uid}`);
      }
      assert.ok(!seen.has(a.get('0008,0018')!.value), 'each SOP Instance UID once');
      seen.add(a.get('0008,0018')!.value);
      assert.equal(a.get('0008,0005')?.value, 'ISO_IR 192', 'text is written as UTF-8');
      assert.equal(a.get('0008,0070')?.value, 'cxr');
      assert.match(a.get('0008,103e')?.value ?? '', /^cxr AI (pneumonia report|heat map) /);
      const refs = run('dcmdump', ['+P', '0008,1155', file]).out;
      assert.ok(refs.includes(`[${sopUid}]`), `${c.name}: ${path.basename(file)} refers to the film`);
    }
  }
});

test('names in ISO 2022 code extensions (Japanese, Korean) are copied into both, as UTF-8', { skip }, async () => {
  // The examples of PS3.5 H.3.1 and I.2: G0 switched to JIS X 0208, and G1 to KS X 1001.
  const esc = (s: string) => Buffer.from(s, 'latin1');
  const films = {
    japanese: {
      charset: '\\ISO 2022 IR 87',
      name: esc('Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B'),
      want: 'Yamada^Tarou=山田^太郎=やまだ^たろう',
    },
    korean: {
      charset: '\\ISO 2022 IR 149',
      name: esc('Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf'),
      want: 'Hong^Gildong=洪^吉洞=홍^길동',
    },
  };
  for (const [name, f] of Object.entries(films)) {
    const film = variant(name, DICOM_FILE, { '(0008,0005)': f.charset, '(0010,0010)': f.name });
    const bytes = fs.readFileSync(film);
    const prediction = await predictor!.predict(bytes, { heatmap: true });
    const model = { name: 'tiny-test', version: '0.0.1', sha256: predictor!.model.sha256 };
    const { sr, sc } = await buildResults({ source: readSource(bytes), prediction, model });
    for (const [kind, obj] of [
      ['sr', sr],
      ['sc', sc],
    ] as const) {
      const file = path.join(dir, `${name}.${kind}.dcm`);
      fs.writeFileSync(file, obj!.bytes);
      const a = attributes(file);
      assert.equal(a.get('0010,0010')?.value, f.want, `${name} ${kind}`);
      assert.equal(a.get('0008,0005')?.value, 'ISO_IR 192');
    }
  }
});
