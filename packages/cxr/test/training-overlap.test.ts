// eval/training_overlap.ts on small made-up training roots (no shared data, no model): which folder is taken for
// the model's, how few films are read when a sample shares none with the split, which side a film is on, and what
// an evaluation's stored overlap becomes in the folder's report.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanDataset } from '../src/data/dataset';
import { filesFingerprint, limitPerClass, recordedSplit } from '../src/data/dataset_images';
import { splitByPatient } from '../src/data/split';
import { evaluate } from '../src/eval';
import { overlapRecord, type SplitRecord, trainingOverlap } from '../src/eval/training_overlap';
import { recordedNotes } from '../src/report/evaluation_notes';
import { readRunDir } from '../src/report/run_dir';
import { writeReport } from '../src/report/write_report';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-overlap-'));
  dirs.push(d);
  return d;
}

/** Bytes of film `k`: 1000 + 10·k of them (each its own size), `salt` changing them, not their size. */
const bytes = (k: number, salt = 0) => Buffer.alloc(1000 + 10 * k, (k * 7 + salt) % 251);

/** A training root: train/NORMAL and train/PNEUMONIA, six films each of one patient each. */
function trainingRoot(at: string): string {
  for (const [c, base] of [
    ['NORMAL', 0],
    ['PNEUMONIA', 6],
  ] as const) {
    fs.mkdirSync(path.join(at, 'train', c), { recursive: true });
    for (let i = 0; i < 6; i++) {
      const name = c === 'NORMAL' ? `IM-${1000 + i}-0001.jpeg` : `person${100 + i}_bacteria_${i}.jpeg`;
      fs.writeFileSync(path.join(at, 'train', c, name), bytes(base + i));
    }
  }
  return at;
}

const definition = { valFraction: 0.34, splitSeed: 5, limitPerClass: 0 };

/** The split training made of `root`, as the check makes it again. */
async function splitOf(root: string) {
  const folder = (await scanDataset(root, { warn: () => {} })).filter((r) => r.split === 'train');
  const s = recordedSplit({ data: definition, recipe: {} });
  return splitByPatient(limitPerClass(folder, 0), { valFraction: 0.34, seed: 5, mode: s.valSplit });
}

/** The cxr.json fields the check reads, with training's fingerprint of the films it decoded (all but `undecoded`). */
async function metaOf(root: string, o: { fingerprint?: boolean; undecoded?: string } = {}): Promise<SplitRecord> {
  const { train, val } = await splitOf(root);
  const kept = (rs: typeof train) => rs.filter((r) => r.path !== o.undecoded);
  const fingerprint = o.fingerprint === false ? {} : { fingerprint: await filesFingerprint(kept(train), kept(val)) };
  return { name: 'm', data: { root, ...definition, ...fingerprint }, recipe: {} };
}

/** A sample folder (NORMAL/) holding `films` as named copies; their paths. */
function sample(at: string, films: Buffer[]): string[] {
  fs.mkdirSync(path.join(at, 'NORMAL'), { recursive: true });
  return films.map((b, i) => {
    const f = path.join(at, 'NORMAL', `s${i}.jpeg`);
    fs.writeFileSync(f, b);
    return f;
  });
}

/** A reader that records what it reads. */
function counting(): { read: (f: string) => Promise<Buffer>; files: string[] } {
  const files: string[] = [];
  const read = async (f: string) => {
    files.push(f);
    return fs.readFileSync(f);
  };
  return { files, read };
}

test('a sample sharing sizes but no film with the split reads only the films of its sizes', async () => {
  const dir = tmp();
  const root = trainingRoot(path.join(dir, 'root'));
  const meta = await metaOf(root);
  // Film 3's size with other bytes, and a size no training film has.
  const films = sample(path.join(dir, 'site'), [bytes(3, 1), bytes(40)]);
  const reads = counting();
  assert.equal(await trainingOverlap(meta, films, path.join(dir, 'site'), { read: reads.read }), null);
  const trainingReads = reads.files.filter((f) => f.startsWith(root));
  assert.deepEqual(
    trainingReads.map((f) => path.basename(f)),
    ['IM-1003-0001.jpeg'],
  );
  assert.deepEqual(
    reads.files.filter((f) => !f.startsWith(root)),
    [films[0]],
  );

  // One film of the split among them: the rest are read to confirm the fingerprint, and the film is named.
  const seen = sample(path.join(dir, 'site2'), [bytes(3), bytes(40)]);
  const again = counting();
  const o = await trainingOverlap(meta, seen, path.join(dir, 'site2'), { read: again.read });
  assert.equal(o?.matchedBy, 'fingerprint');
  assert.equal(again.files.filter((f) => f.startsWith(root)).length, 12);
  assert.deepEqual([...(o?.training ?? []), ...(o?.validation ?? [])], [seen[0]]);
});

test('a film training could not decode leaves the split unconfirmed in the folder it records, said so', async () => {
  const dir = tmp();
  const root = trainingRoot(path.join(dir, 'root'));
  const bad = path.join(root, 'train', 'NORMAL', 'IM-1099-0001.jpeg');
  fs.writeFileSync(bad, Buffer.from('not an image'));
  const meta = await metaOf(root, { undecoded: bad });
  const { train } = await splitOf(root);
  const learned = train.find((r) => r.path !== bad);
  assert.ok(learned);
  const films = sample(path.join(dir, 'site'), [fs.readFileSync(learned.path), bytes(40)]);
  const o = await overlapRecord(meta, films, path.join(dir, 'site'));
  assert.equal(o?.matchedBy, 'split');
  assert.equal(o?.unconfirmed, 'fingerprint-differs');
  assert.deepEqual(o?.training.files, [films[0]]);
  assert.match(o?.warning ?? '', /not confirmed by the fingerprint it records/);

  // The same layout elsewhere (not the folder the model records, its fingerprint not given): no claim.
  const copy = path.join(dir, 'copy');
  fs.cpSync(root, copy, { recursive: true });
  const films2 = sample(path.join(copy, 'test'), [fs.readFileSync(learned.path)]);
  assert.equal(await trainingOverlap({ ...meta, data: { ...meta.data, root: '/nowhere' } }, films2, copy), null);
});

test('a model without a fingerprint takes only the folder it records for its training root', async () => {
  const dir = tmp();
  const root = trainingRoot(path.join(dir, 'root'));
  const meta = await metaOf(root, { fingerprint: false });
  const { train } = await splitOf(root);
  // Any Kaggle-like root evaluated (here one whose train/ holds the model's own films) is not the model's.
  const lookalike = path.join(dir, 'lookalike');
  fs.cpSync(root, lookalike, { recursive: true });
  const films = [train[0].path.replace(root, lookalike)];
  const elsewhere = { ...meta, data: { ...meta.data, root: path.join(dir, 'gone') } };
  assert.equal(await trainingOverlap(elsewhere, films, lookalike), null);
  assert.equal(await trainingOverlap(elsewhere, films, path.join(lookalike, 'train')), null);
  // Its own root: the split applied there, unconfirmed.
  const o = await trainingOverlap(meta, films, lookalike);
  assert.equal(o?.root, root);
  assert.equal(o?.unconfirmed, 'no-fingerprint');
  assert.deepEqual(o?.training, films);
});

test('a film whose bytes are in both the training and the validation split is reported as trained on', async () => {
  const dir = tmp();
  const root = trainingRoot(path.join(dir, 'root'));
  const { train, val } = await splitOf(root);
  assert.ok(train.length && val.length);
  // A validation patient's film with the bytes of a training one (the same film filed under two patients).
  fs.writeFileSync(val[0].path, fs.readFileSync(train[0].path));
  const meta = await metaOf(root);
  const films = sample(path.join(dir, 'site'), [fs.readFileSync(train[0].path)]);
  const o = await trainingOverlap(meta, films, path.join(dir, 'site'));
  assert.equal(o?.matchedBy, 'fingerprint');
  assert.deepEqual([o?.training, o?.validation], [films, []]);
});

test("a stored evaluation's overlap is read into the report and said there as a note", async () => {
  const dir = tmp();
  fs.mkdirSync(path.join(dir, 'metrics'));
  const overlap = {
    warning: 'warning: of the 9 films, 3 were in m training split',
    root: '/data/chest_xray',
    matchedBy: 'fingerprint',
    training: { count: 3, files: ['NORMAL/a.jpeg', 'NORMAL/b.jpeg', 'PNEUMONIA/c.jpeg'] },
    validation: { count: 2, files: ['NORMAL/d.jpeg', 'NORMAL/e.jpeg'] },
  };
  const metrics = evaluate([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9], { threshold: 0.5 });
  fs.writeFileSync(path.join(dir, 'metrics', 'all.json'), JSON.stringify({ ...metrics, trainingOverlap: overlap }));
  const run = await readRunDir(dir);
  const split = run.splits.find((s) => s.name === 'all');
  assert.ok(split, JSON.stringify(run.warnings));
  const notes = recordedNotes(split).join('\n');
  assert.match(notes, /OPTIMISTIC: the model has seen 5 of these films, 3 in its training split/);
  assert.match(notes, /2 in its validation split/);
  assert.match(notes, /confirmed by the fingerprint it records/);
  assert.match(notes, /NORMAL\/a\.jpeg; NORMAL\/b\.jpeg/);
  // In the page a reader opens.
  await writeReport(dir);
  const html = fs.readFileSync(path.join(dir, 'report', 'index.html'), 'utf8');
  assert.match(html, /OPTIMISTIC: the model has seen 5 of these films/);
});
