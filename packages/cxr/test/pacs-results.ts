// What the PACS holds after cxr ran: the results (SR, Secondary Capture) per source film, read
// back from Orthanc through the stack's REST API. Shared by the PACS and queue end-to-end tests.
import assert from 'node:assert/strict';
import * as dicomParser from 'dicom-parser';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSource } from '../src/dicom_out';
import { DICOM_DIR } from './serve-fixtures';
import { orthanc, type Stack } from './stack-fixture';

export async function findInstances(stack: Stack, query: Record<string, string>): Promise<string[]> {
  const res = await orthanc(stack, '/tools/find', {
    method: 'POST',
    body: JSON.stringify({ Level: 'Instance', Query: query }),
  });
  assert.equal(res.status, 200);
  return (await res.json()) as string[];
}

async function dataset(stack: Stack, id: string): Promise<dicomParser.DataSet> {
  const res = await orthanc(stack, `/instances/${id}/file`);
  return dicomParser.parseDicom(new Uint8Array(await res.arrayBuffer()));
}

const str = (ds: dicomParser.DataSet, tag: string) => ds.string(tag)?.replace(/\0/g, '').trim();
const first = (ds: dicomParser.DataSet, ...tags: string[]) =>
  tags.reduce((d, t) => d.elements[t].items![0].dataSet!, ds);

/** For every SR (or SC) in the PACS: the source SOP instance it refers to → the studies it was filed in. */
export async function results(stack: Stack, modality: 'SR' | 'OT'): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const id of await findInstances(stack, { Modality: modality })) {
    const ds = await dataset(stack, id);
    const source =
      modality === 'SR'
        ? str(first(ds, 'x0040a375', 'x00081115', 'x00081199'), 'x00081155')!
        : str(first(ds, 'x00082112'), 'x00081155')!;
    out.set(source, [...(out.get(source) ?? []), str(ds, 'x0020000d')!]);
  }
  return out;
}

/** Exactly one SR and one SC per film (SOP UID → study UID), each in its film's study, and nothing else. */
export async function assertOneResultEach(stack: Stack, films: Map<string, string>): Promise<void> {
  for (const modality of ['SR', 'OT'] as const) {
    const r = await results(stack, modality);
    assert.equal(r.size, films.size, `${modality}: one per chest film`);
    for (const [sop, study] of films) {
      assert.deepEqual(r.get(sop), [study], `${modality} for ${sop}: exactly one, in the film's study`);
    }
  }
  assert.equal((await findInstances(stack, {})).length, films.size * 3, 'films + their SR + SC, nothing else');
}

/** Uploads every sample file to Orthanc; the map is SOP Instance UID → Study Instance UID (files holding the
 * same instance are stored once). */
export async function uploadSamples(stack: Stack): Promise<Map<string, string>> {
  const films = new Map<string, string>();
  for (const f of fs
    .readdirSync(DICOM_DIR)
    .filter((n) => n.endsWith('.dcm'))
    .sort()) {
    const bytes = fs.readFileSync(path.join(DICOM_DIR, f));
    const res = await orthanc(stack, '/instances', { method: 'POST', body: new Uint8Array(bytes) });
    assert.equal(res.status, 200, `${f} uploaded`);
    const src = readSource(bytes);
    films.set(src.sopInstanceUid, src.studyInstanceUid);
  }
  return films;
}
