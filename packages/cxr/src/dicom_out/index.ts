// Results back into the PACS as DICOM: a structured report per prediction and the heat map as a
// secondary capture, both in the source film's study, with deterministic UIDs.
import type { Prediction } from '../predict/predictor';
import type { DicomObject, ResultInput } from './result';
import { buildSecondaryCapture } from './secondary_capture';
import { buildSr } from './sr';

export { CAVEAT, isOwnResult, MANUFACTURER, SOP_CLASS } from './identity';
export { readSource, type SourceImage } from './source';
export { buildSr, CODES } from './sr';
export { buildSecondaryCapture, burnedInLines } from './secondary_capture';
export {
  instanceNumber,
  scUids,
  srUids,
  type DicomObject,
  type ResultInput,
  type ResultModel,
  type SourceRef,
} from './result';
export { derivedUid, isUid } from './uids';

/** The heat map (when the prediction has one) and the report pointing to it. */
export async function buildResults(
  input: ResultInput & { prediction: Prediction },
): Promise<{ sr: DicomObject; sc: DicomObject | null }> {
  const sc = input.prediction.heatmapPng ? await buildSecondaryCapture(input, input.prediction.heatmapPng) : null;
  return { sr: buildSr(input, sc ?? undefined), sc };
}
