// Whether a film's results are in the PACS already (pacs/stored_results.ts), against an Orthanc that answers
// from a table: heat maps have had a UID per operating point since a screening report pointed at the
// balanced heat map; a report written before that points to the heat map under its old UID, and counts as
// done while that one is stored (else every pass predicted the film again and left an unreferenced heat map).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scUids, srUids } from '../src/dicom_out';
import type { OrthancClient } from '../src/pacs/client';
import { storedResults } from '../src/pacs/stored_results';

const ref = { studyInstanceUid: '1.2.3', sopInstanceUid: '1.2.3.4' };
const model = { sha256: 'ab'.repeat(32) };
const full = { name: '', version: '', ...model };
const OLD_SC = '2.25.1234';

/** An Orthanc holding `uids` (SOP Instance UID -> Orthanc id), whose report's tags are `tags`. */
function pacs(uids: Record<string, string>, tags: Record<string, unknown>): OrthancClient {
  return {
    findInstance: async (uid: string) => (uids[uid] ? [uids[uid]] : []),
    instanceTags: async () => tags,
  } as unknown as OrthancClient;
}

const pointingTo = (uid: string) => ({
  PertinentOtherEvidenceSequence: [
    {
      StudyInstanceUID: '1.2.3',
      ReferencedSeriesSequence: [{ ReferencedSOPSequence: [{ ReferencedSOPInstanceUID: uid }] }],
    },
  ],
});

test('a report and its heat map under the new UIDs: done', async () => {
  const sr = srUids(ref, full, 'screening').sopInstanceUid;
  const sc = scUids(ref, full, 'screening').sopInstanceUid;
  const r = await storedResults(pacs({ [sr]: 'o-sr', [sc]: 'o-sc' }, {}), ref, model, 'screening');
  assert.deepEqual(r, { sr: ['o-sr'], sc: ['o-sc'], done: true });
});

test('a report pointing to a heat map under its old UID: done while that heat map is stored', async () => {
  const sr = srUids(ref, full, 'balanced').sopInstanceUid;
  const kept = await storedResults(
    pacs({ [sr]: 'o-sr', [OLD_SC]: 'o-old' }, pointingTo(OLD_SC)),
    ref,
    model,
    'balanced',
  );
  assert.deepEqual(kept, { sr: ['o-sr'], sc: ['o-old'], done: true });
  // Deleted: still to do, so the heat map is written again.
  const gone = await storedResults(pacs({ [sr]: 'o-sr' }, pointingTo(OLD_SC)), ref, model, 'balanced');
  assert.equal(gone.done, false);
});

test('a report with no heat map (cannot assess): done; no report: not done', async () => {
  const sr = srUids(ref, full, 'balanced').sopInstanceUid;
  assert.equal((await storedResults(pacs({ [sr]: 'o-sr' }, {}), ref, model, 'balanced')).done, true);
  assert.equal((await storedResults(pacs({}, {}), ref, model, 'balanced')).done, false);
});
