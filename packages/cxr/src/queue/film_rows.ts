// The audit log's row of a film, found and written by its result key, and checked against the film's bytes.
// A DICOM film is keyed by its SOP Instance UID, and two different files can carry one UID (a copy edited, a
// faulty modality, a forged file): a row keyed by a UID answers only the film whose bytes it was made from (its
// input sha256). Another film with that UID is predicted on its own and its row is keyed by its bytes (job.ts
// byteKeyOf), so that it too is written once and found again. Used by the worker (process.ts) and by
// `cxr orthanc sync` (cli/orthanc.ts); the audit log's unique index on the key is unchanged, so rows written
// before this check stand as they were (a UID row answers the film of its bytes, as it always did).
import type { AuditRecord } from '../predict/prediction_schema';
import type { AuditImages, AuditStore } from '../serve/audit';
import { byteKeyOf } from './job';

export type FilmRowStore = Pick<AuditStore, 'insertOnce' | 'findByResultKey'>;

/** The sha256 of the film's bytes, or how to get it (only asked for when a row is found by the key). */
export type FilmSha256 = string | (() => Promise<string>);

/**
 * The row that answers `resultKey` for the film whose bytes have this sha256: the key's own row when it was made
 * from the same bytes, else the row keyed by the film's bytes; null when the film has none.
 */
export async function findFilmRow(
  store: FilmRowStore,
  resultKey: string,
  modelSha256: string,
  operatingPoint: string,
  filmSha256: FilmSha256,
): Promise<AuditRecord | null> {
  const row = await store.findByResultKey(resultKey, modelSha256, operatingPoint);
  if (!row) return null;
  const sha = typeof filmSha256 === 'string' ? filmSha256 : await filmSha256();
  if (row.input.sha256 === sha) return row;
  const own = byteKeyOf(resultKey, sha);
  return own === resultKey ? null : store.findByResultKey(own, modelSha256, operatingPoint);
}

export type FilmRowWritten =
  | { written: 'inserted'; record: AuditRecord }
  /** The film's row was there: `row` is it (null only if it vanished between the two queries). */
  | { written: 'exists'; row: AuditRecord | null };

/**
 * Writes `record` once under `resultKey` (AuditStore.insertOnce); when the key's row was made from other bytes
 * (another film with the same UID), under the film's byte key instead. Never answers with another film's row.
 * `record` as written (its resultKey the key it went under), or the film's row that was there first.
 */
export async function insertFilmRow(
  store: FilmRowStore,
  record: AuditRecord,
  images: AuditImages | null,
  resultKey: string,
): Promise<FilmRowWritten> {
  const { model, operatingPoint, input } = record;
  let key = resultKey;
  for (;;) {
    const keyed = { ...record, resultKey: key };
    if ((await store.insertOnce(keyed, images, key)) === 'inserted') return { written: 'inserted', record: keyed };
    const row = await store.findByResultKey(key, model.sha256, operatingPoint);
    const own = byteKeyOf(resultKey, input.sha256);
    // The byte key's row is always of these bytes (a sha256 names them).
    if (!row || row.input.sha256 === input.sha256 || key === own) return { written: 'exists', row };
    key = own;
  }
}
