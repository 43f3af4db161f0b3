// A film the model cannot assess, through a real Orthanc: its report says so and gives no finding, no
// heat map is stored, and the next pass finds it done. Before, "done" meant a report and a heat map,
// which such a film never gets, so every `--since-start` sync and `cxr enqueue --orthanc-all` predicted
// and stored it again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as dicomParser from 'dicom-parser';
import { CODES } from '../src/dicom_out';
import { loadOrthancConfig, OrthancClient, processInstance } from '../src/pacs';
import { Predictor } from '../src/predict/predictor';
import { imageElements, writeDicom } from './dicom-writer';
import { findInstances } from './pacs-results';
import { makeTinyModel, tempDir } from './serve-fixtures';
import { orthanc, type Stack, stackUnavailable, startStack, stopStack } from './stack-fixture';

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let predictor: Predictor;

before(async () => {
  if (skip) return;
  dir = tempDir('pacs-cannot-assess');
  predictor = await Predictor.load(await makeTinyModel(path.join(dir, 'model')), { warmUp: false });
  stack = startStack('pacs-cannot-assess', ['orthanc']);
});
after(() => {
  predictor?.dispose();
  stopStack(stack);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A chest CR film whose pixels are one grey level: the image checks call it blank. */
function blankFilm(): Buffer {
  const uid = (n: number) => ({ tag: n, vr: 'UI', value: `2.25.${1000 + n}` });
  return writeDicom(
    imageElements({
      rows: 256,
      columns: 256,
      bitsAllocated: 8,
      pixels: new Uint8Array(256 * 256).fill(120),
      extra: [
        { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1' },
        uid(0x00080018),
        uid(0x0020000d),
        uid(0x0020000e),
      ],
    }),
  );
}

test('a film that cannot be assessed: a report without a finding, no heat map, and done on the next pass', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const upload = await orthanc(stack!, '/instances', { method: 'POST', body: new Uint8Array(blankFilm()) });
  assert.equal(upload.status, 200);
  const { ID: id } = (await upload.json()) as { ID: string };
  const client = new OrthancClient(loadOrthancConfig({ env: stack!.env }));
  const log: string[] = [];

  assert.equal(await processInstance(client, predictor, id, { log: (l) => log.push(l) }), 'processed');
  assert.match(log.join('\n'), /cannot assess p=/);
  assert.deepEqual(await findInstances(stack!, { Modality: 'OT' }), [], 'no heat map for it');
  const [sr] = await findInstances(stack!, { Modality: 'SR' });
  const file = await orthanc(stack!, `/instances/${sr}/file`);
  const ds = dicomParser.parseDicom(new Uint8Array(await file.arrayBuffer()));
  const meaning = (d: dicomParser.DataSet, tag: string) =>
    d.elements[tag]?.items?.[0].dataSet?.string('x00080104')?.trim();
  const content = (ds.elements.x0040a730.items ?? []).map((i) => i.dataSet!);
  const named = (m: string) => content.filter((c) => meaning(c, 'x0040a043') === m);
  assert.equal(meaning(named(CODES.assessment.CodeMeaning)[0], 'x0040a168'), 'Cannot be assessed');
  assert.deepEqual(named(CODES.pneumonia.CodeMeaning), [], 'no finding');
  assert.deepEqual(named(CODES.probability.CodeMeaning), [], 'no number');

  // The next pass (a --since-start sync, an --orthanc-all backfill) finds its results there.
  assert.equal(await processInstance(client, predictor, id, { log: (l) => log.push(l) }), 'already-done');
  assert.equal((await findInstances(stack!, { Modality: 'SR' })).length, 1);
});
