// Whether the PACS already holds a film's results from this model (and operating point): the report, and
// the heat map when the report refers to one. A film the model cannot assess gets a report and no heat map
// (predict/verdict.ts), so asking for both would predict and store it again on every pass.
import { type ResultModel, scUids, srUids, type SourceRef } from '../dicom_out';
import type { OrthancClient } from './client';

export interface StoredResults {
  /** Orthanc ids of the report and of the heat map (empty when absent). */
  sr: string[];
  sc: string[];
  done: boolean;
}

export async function storedResults(
  client: OrthancClient,
  ref: SourceRef,
  model: Pick<ResultModel, 'sha256'>,
  operatingPoint: string,
): Promise<StoredResults> {
  const full = { name: '', version: '', ...model };
  const [sr, sc] = await Promise.all([
    client.findInstance(srUids(ref, full, operatingPoint).sopInstanceUid),
    client.findInstance(scUids(ref, full).sopInstanceUid),
  ]);
  if (sr.length === 0 || sc.length > 0) return { sr, sc, done: sr.length > 0 };
  // A report without its heat map: done when the report points to none (the heat map is its only
  // Pertinent Other Evidence), still to do when a heat map it refers to was not stored.
  const tags = await client.instanceTags(sr[0]);
  return { sr, sc, done: !('PertinentOtherEvidenceSequence' in tags) };
}
