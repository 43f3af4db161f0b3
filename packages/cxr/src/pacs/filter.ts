// Which instances in the PACS the model should read: chest radiographs (CR/DX/DR/RG, body part
// CHEST, THORAX or LUNG, or not given) FOR PRESENTATION, frontal views (a film a request names is read even when
// lateral), never cxr's own results (which would otherwise be fed back to it).
import { isForProcessingImage } from '../data/for_processing';
import { isOwnResult } from '../dicom_out';
import {
  BODY_PART_TERMS,
  CHEST_BODY_PART,
  FILM_MODALITIES,
  headerValue,
  LATERAL_VIEWS,
  MODALITY_TERMS,
  modalityList,
} from '../explain/image_checks';

// The modalities every prediction's image check reads as a plain film (RG, a digitised film, too): one rule, so
// that a film `cxr predict` reads without a warning is never skipped here (RG was, before 2026-12-08).
const MODALITIES = new Set(FILM_MODALITIES);

/** ownResult: one of cxr's own results (a sync restart meets one per result it wrote: not worth a line each). */
export type Verdict = { accept: true } | { accept: false; reason: string; ownResult?: true };

/**
 * The reason an image FOR PROCESSING is skipped: `cxr enqueue --orthanc-all` counts these apart by it, since a
 * modality that sends both copies of every film puts one of these beside each film it reads.
 */
export const FOR_PROCESSING_REASON = 'image FOR PROCESSING (raw detector data), not a film for reading';

/**
 * The reason a lateral view is skipped by the sync and `cxr enqueue --orthanc-all` (which counts these apart by it):
 * the model reads frontal views only, and answered each lateral film of a PA + lateral exam "cannot assess".
 */
export const LATERAL_REASON = 'lateral view (ViewPosition): the model reads frontal (PA/AP) views only';

const tag = (tags: Record<string, unknown>, k: string): string =>
  typeof tags[k] === 'string' ? (tags[k] as string).trim() : '';

/**
 * Decides from Orthanc's simplified tags (keyword → string). `lateral: 'read'` for a film a request names (POST
 * /jobs with orthancInstances): it is answered, its report saying why it cannot be assessed; what the PACS offers
 * by itself (the sync, a backfill) skips lateral views.
 */
export function classifyInstance(tags: Record<string, unknown>, opts: { lateral?: 'skip' | 'read' } = {}): Verdict {
  // cxr's own by what it writes (dicom_out/identity.ts), not by the SOP class: another vendor's SR or Secondary
  // Capture is skipped below as what it is (modality SR or OT is no chest film), not counted as a cxr result.
  if (isOwnResult({ manufacturer: tag(tags, 'Manufacturer'), seriesDescription: tag(tags, 'SeriesDescription') })) {
    return { accept: false, reason: 'a cxr result', ownResult: true };
  }
  const modality = tag(tags, 'Modality').toUpperCase();
  if (!MODALITIES.has(modality)) {
    const what = modality ? headerValue('modality', modality, MODALITY_TERMS) : 'modality (none)';
    return { accept: false, reason: `${what} is not ${modalityList()}` };
  }
  const body = tag(tags, 'BodyPartExamined').toUpperCase();
  // The body parts every prediction's image check reads as a chest (THORAX and LUNG too, which modalities write for
  // chest films): one rule, so that a film `cxr predict` reads is never skipped here. The reason is logged (and
  // answered as a job's skip): a value that is not a code is not shown (image_checks.ts).
  if (body && !CHEST_BODY_PART.test(body))
    return { accept: false, reason: `${headerValue('body part', body, BODY_PART_TERMS)} is not CHEST` };
  // Raw detector data is answered "cannot assess" (FOR_PROCESSING, data/dicom.ts): a job and a prediction to say
  // so, and a second result beside the FOR PRESENTATION copy's in the study. Orthanc names both tags by keyword.
  const forProcessing = {
    presentationIntent: tag(tags, 'PresentationIntentType'),
    sopClassUid: tag(tags, 'SOPClassUID'),
  };
  if (isForProcessingImage(forProcessing)) return { accept: false, reason: FOR_PROCESSING_REASON };
  // The views every prediction's image check warns about as lateral (image_checks.ts): one rule with it.
  if ((opts.lateral ?? 'skip') === 'skip' && LATERAL_VIEWS.has(tag(tags, 'ViewPosition').toUpperCase()))
    return { accept: false, reason: LATERAL_REASON };
  if (!tag(tags, 'SOPInstanceUID') || !tag(tags, 'StudyInstanceUID'))
    return { accept: false, reason: 'no SOP instance or study UID' };
  return { accept: true };
}
