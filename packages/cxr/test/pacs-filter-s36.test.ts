// Images FOR PROCESSING (raw detector data) in the PACS: the decoder answers them "cannot assess" (FOR_PROCESSING),
// so the sync and `cxr enqueue --orthanc-all` must not send them to the model at all: each cost a job and a
// prediction, and a modality that sends both copies of every film got two results per film in the study.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { decodeDicom } from '../src/data/dicom';
import { FOR_PROCESSING_SOP_CLASSES } from '../src/data/for_processing';
import { classifyInstance, FOR_PROCESSING_REASON, type OrthancClient } from '../src/pacs';
import { processInstance } from '../src/pacs/sync';
import type { Predictor } from '../src/predict/predictor';
import { type Element, imageElements, writeDicom } from './dicom-writer';
import { startModelStack, stopModelStack } from './queue-stack';
import { runCli } from './serve-fixtures';
import { orthanc, type Stack, stackUnavailable } from './stack-fixture';

const DX_FOR_PRESENTATION = '1.2.840.10008.5.1.4.1.1.1.1';
const DX_FOR_PROCESSING = '1.2.840.10008.5.1.4.1.1.1.1.1';

/** A chest DX as Orthanc's /simplified-tags gives it (keyword → trimmed string). */
const chestDx = (extra: Record<string, string>): Record<string, string> => ({
  Modality: 'DX',
  BodyPartExamined: 'CHEST',
  SOPInstanceUID: '2.25.1',
  StudyInstanceUID: '2.25.2',
  Manufacturer: 'ACME',
  ...extra,
});

test('classifyInstance skips an image FOR PROCESSING, by its presentation intent or its SOP class', () => {
  const skipped = { accept: false, reason: FOR_PROCESSING_REASON };
  assert.deepEqual(classifyInstance(chestDx({ PresentationIntentType: 'FOR PROCESSING' })), skipped);
  assert.deepEqual(classifyInstance(chestDx({ SOPClassUID: DX_FOR_PROCESSING })), skipped, 'SOP class alone');
  assert.deepEqual(
    classifyInstance(chestDx({ PresentationIntentType: 'FOR PROCESSING', SOPClassUID: DX_FOR_PROCESSING })),
    skipped,
  );
  // The code string as a careless modality writes it: padding and case do not hide it.
  assert.deepEqual(classifyInstance(chestDx({ PresentationIntentType: ' for processing ' })), skipped);
  // A CR film (no intent), the FOR PRESENTATION copy of the same DX, and a film with no body part are read.
  assert.deepEqual(classifyInstance({ ...chestDx({}), Modality: 'CR' }), { accept: true });
  const presentation = { PresentationIntentType: 'FOR PRESENTATION', SOPClassUID: DX_FOR_PRESENTATION };
  assert.deepEqual(classifyInstance(chestDx(presentation)), { accept: true });
  assert.deepEqual(classifyInstance({ ...chestDx(presentation), BodyPartExamined: '' }), { accept: true });
  // What is no chest film is said as such first; cxr's own results stay counted as its own.
  assert.equal(
    (
      classifyInstance(chestDx({ PresentationIntentType: 'FOR PROCESSING', BodyPartExamined: 'HAND' })) as {
        reason: string;
      }
    ).reason,
    'body part HAND is not CHEST',
  );
  const own = classifyInstance(chestDx({ PresentationIntentType: 'FOR PROCESSING', Manufacturer: 'cxr' }));
  assert.equal((own as { ownResult?: true }).ownResult, true);
  // Every For Processing class of the decoder's list is skipped (one list, data/for_processing.ts).
  assert.equal(FOR_PROCESSING_SOP_CLASSES.size, 3);
  for (const uid of FOR_PROCESSING_SOP_CLASSES) {
    assert.deepEqual(classifyInstance(chestDx({ SOPClassUID: uid })), skipped, uid);
  }
});

/** A small 8-bit DX chest film of its own (UIDs from `n`), with these header elements. */
function dxFilm(n: number, extra: Element[]): Buffer {
  const pixels = new Uint8Array(128 * 128);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i % 128) ^ (n * 37);
  const uid = (tag: number): Element => ({ tag, vr: 'UI', value: `2.25.${360000 + n * 10 + (tag & 0xf)}` });
  const elements: Element[] = [
    { tag: 0x00080060, vr: 'CS', value: 'DX' },
    { tag: 0x00180015, vr: 'CS', value: 'CHEST' },
    uid(0x00080018),
    uid(0x0020000d),
    uid(0x0020000e),
    ...extra,
  ];
  return writeDicom(imageElements({ rows: 128, columns: 128, bitsAllocated: 8, pixels, extra: elements }));
}

const intent = (value: string): Element => ({ tag: 0x00080068, vr: 'CS', value });
const sopClass = (uid: string): Element => ({ tag: 0x00080016, vr: 'UI', value: uid });

/** The films of the end-to-end check: [name, header elements, FOR PROCESSING]. */
const FILMS: [string, Element[], boolean][] = [
  ['PresentationIntentType FOR PROCESSING', [intent('FOR PROCESSING'), sopClass(DX_FOR_PRESENTATION)], true],
  ['the DX For Processing SOP class', [sopClass(DX_FOR_PROCESSING)], true],
  ['FOR PRESENTATION', [intent('FOR PRESENTATION'), sopClass(DX_FOR_PRESENTATION)], false],
];

test('the filter and the decoder agree on which films are FOR PROCESSING', async () => {
  for (const [n, [what, extra, forProcessing]] of FILMS.entries()) {
    const tags = chestDx({});
    for (const e of extra) {
      if (e.tag === 0x00080068) tags.PresentationIntentType = String(e.value);
      if (e.tag === 0x00080016) tags.SOPClassUID = String(e.value);
    }
    assert.equal((await decodeDicom(dxFilm(n, extra))).forProcessing === true, forProcessing, `decoder: ${what}`);
    assert.equal(classifyInstance(tags).accept, !forProcessing, `filter: ${what}`);
  }
});

test('the sync skips an instance FOR PROCESSING without downloading it, and says why', async () => {
  const asked: string[] = [];
  const client = {
    instanceTags: async (id: string) => {
      asked.push(`tags ${id}`);
      return chestDx({ PresentationIntentType: 'FOR PROCESSING' });
    },
    instanceFile: async (id: string) => {
      asked.push(`file ${id}`);
      throw new Error('the film was downloaded');
    },
  } as unknown as OrthancClient;
  const predictor = {
    predict: () => assert.fail('the film was predicted'),
  } as unknown as Predictor;
  const lines: string[] = [];
  const outcome = await processInstance(client, predictor, 'abc', { log: (l) => lines.push(l) });
  assert.equal(outcome, 'skipped');
  assert.deepEqual(asked, ['tags abc']);
  assert.deepEqual(lines, [`skip abc: ${FOR_PROCESSING_REASON}`]);
});

// --- End to end: the stack's Orthanc (its real simplified tags) and Redis, `cxr enqueue` and `cxr orthanc sync` ---

const skip = stackUnavailable();
if (skip) console.log(`# pacs-filter-s36 end-to-end test skipped: ${skip}`);
let stack: Stack | undefined;
let dir = '';
let modelDir = '';

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('pacs-filter-s36', ['orthanc', 'redis']));
});
after(async () => {
  await stopModelStack({ stack, dir });
});

/** `cxr ARGS` against the stack, with the tiny model, in the test's folder. */
function cxr(args: string[]) {
  return runCli(args, { env: { ...process.env, ...stack!.env, CXR_MODEL: modelDir }, cwd: dir });
}

test('Orthanc: images FOR PROCESSING are not queued, and enqueue and sync say them apart', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  for (const [n, [what, extra, forProcessing]] of FILMS.entries()) {
    const up = await orthanc(stack!, '/instances', { method: 'POST', body: new Uint8Array(dxFilm(n, extra)) });
    assert.equal(up.status, 200, what);
    const id = ((await up.json()) as { ID: string }).ID;
    // Orthanc's own simplified tags, as the sync and enqueue read them.
    const tags = (await (await orthanc(stack!, `/instances/${id}/simplified-tags`)).json()) as Record<string, unknown>;
    assert.deepEqual(
      classifyInstance(tags),
      forProcessing ? { accept: false, reason: FOR_PROCESSING_REASON } : { accept: true },
      what,
    );
  }
  const said = await cxr(['enqueue', '--orthanc-all']);
  assert.equal(said.code, 0, said.stderr);
  const line = said.stdout.trim();
  assert.ok(line.startsWith('1 queued, 0 already queued, 0 already done, '), line);
  assert.ok(line.includes(', 2 images FOR PROCESSING (raw detector data) skipped'), line);
  assert.ok(!line.includes('not chest films'), `no film counted as not a chest film: ${line}`);
  const counts = JSON.parse((await cxr(['enqueue', '--orthanc-all', '--json'])).stdout) as Record<string, number>;
  assert.deepEqual(
    { alreadyQueued: counts.alreadyQueued, skipped: counts.skipped, forProcessing: counts.forProcessing },
    { alreadyQueued: 1, skipped: 2, forProcessing: 2 },
  );
  // The sync with --queue counts its skips by reason in its summary line.
  const state = path.join(dir, 'state.json');
  const sync = await cxr(['orthanc', 'sync', '--once', '--since-start', '--queue', '--no-audit', '--state', state]);
  assert.equal(sync.code, 0, sync.stderr);
  assert.ok(sync.stderr.includes(`2 skipped (2: ${FOR_PROCESSING_REASON})`), sync.stderr);
});
