// Which instances in the PACS the model should read: chest radiographs (CR/DX/DR, body part
// CHEST or not given), never cxr's own results (which would otherwise be fed back to it).
import { MANUFACTURER, SOP_CLASS } from '../dicom_out';
import { BODY_PART_TERMS, headerValue, MODALITY_TERMS } from '../explain/image_checks';

const MODALITIES = new Set(['CR', 'DX', 'DR']);
const OWN_CLASSES = new Set<string>([SOP_CLASS.comprehensiveSr]);

/** ownResult: one of cxr's own results (a sync restart meets one per result it wrote: not worth a line each). */
export type Verdict = { accept: true } | { accept: false; reason: string; ownResult?: true };

const tag = (tags: Record<string, unknown>, k: string): string =>
  typeof tags[k] === 'string' ? (tags[k] as string).trim() : '';

/** Decides from Orthanc's simplified tags (keyword → string). */
export function classifyInstance(tags: Record<string, unknown>): Verdict {
  const manufacturer = tag(tags, 'Manufacturer');
  const sopClass = tag(tags, 'SOPClassUID');
  if (
    manufacturer === MANUFACTURER ||
    OWN_CLASSES.has(sopClass) ||
    tag(tags, 'SeriesDescription').startsWith(`${MANUFACTURER} AI `)
  ) {
    return { accept: false, reason: 'a cxr result', ownResult: true };
  }
  const modality = tag(tags, 'Modality').toUpperCase();
  if (!MODALITIES.has(modality))
    return {
      accept: false,
      reason: `${modality ? headerValue('modality', modality, MODALITY_TERMS) : 'modality (none)'} is not CR, DX or DR`,
    };
  const body = tag(tags, 'BodyPartExamined').toUpperCase();
  // The reason is logged (and answered as a job's skip): a value that is not a code is not shown (image_checks.ts).
  if (body && body !== 'CHEST')
    return { accept: false, reason: `${headerValue('body part', body, BODY_PART_TERMS)} is not CHEST` };
  if (!tag(tags, 'SOPInstanceUID') || !tag(tags, 'StudyInstanceUID'))
    return { accept: false, reason: 'no SOP instance or study UID' };
  return { accept: true };
}
