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
    client.findInstance(scUids(ref, full, operatingPoint).sopInstanceUid),
  ]);
  if (sr.length === 0 || sc.length > 0) return { sr, sc, done: sr.length > 0 };
  // A report without its heat map: done when the report points to none (the heat map is its only
  // Pertinent Other Evidence), still to do when a heat map it refers to was not stored.
  const tags = await client.instanceTags(sr[0]);
  if (!('PertinentOtherEvidenceSequence' in tags)) return { sr, sc, done: true };
  // A report written before heat maps had a UID per operating point points to the heat map under its old
  // UID: done when that one is stored, else the film would be predicted again on every pass and leave a
  // heat map no report refers to.
  const referenced = referencedSopUid(tags.PertinentOtherEvidenceSequence);
  const old = referenced ? await client.findInstance(referenced) : [];
  return { sr, sc: old, done: old.length > 0 };
}

/** The first SOP Instance UID a PertinentOtherEvidenceSequence (simplified tags) refers to, if any. */
function referencedSopUid(sequence: unknown): string | null {
  const first = (v: unknown): Record<string, unknown> | null =>
    Array.isArray(v) && v[0] && typeof v[0] === 'object' ? (v[0] as Record<string, unknown>) : null;
  const uid = first(first(first(sequence)?.ReferencedSeriesSequence)?.ReferencedSOPSequence)?.ReferencedSOPInstanceUID;
  return typeof uid === 'string' && uid.trim() ? uid.trim() : null;
}
