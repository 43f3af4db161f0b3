// The Grad-CAM heat map as a DICOM Secondary Capture image (RGB, 8 bits, uncompressed) in the
// source's study, with the caveat and the result burned into the pixels.
import { HEATMAP_FLOOR } from '../explain/colormap';
import { percent, resultLine } from '../predict/result_words';
import { annotateHeatmap } from './overlay';
import { CAVEAT, SOP_CLASS } from './identity';
import { type Dataset, writePart10 } from './part10';
import { commonAttributes, type DicomObject, type ResultInput, scUids } from './result';

/**
 * Said under a heat map with no colour at all. The overlay's colours are scaled by P(pneumonia) and none is drawn
 * at or under HEATMAP_FLOOR (explain/gradcam.ts renderOverlay), so a confident NORMAL film's map is the bare film:
 * without a word, a radiologist could take it for an overlay that failed. The web page says the same
 * (web/client/heatmap_weak.ts), in percent as the result line above it is.
 */
export const EMPTY_HEATMAP_LINE =
  `No colour on this heat map: no region raised the pneumonia score enough to draw (none is drawn at a ` +
  `probability of pneumonia of ${percent(HEATMAP_FLOOR, 0)} or under).`;

/**
 * The text lines burned in below the heat map: the model, then the result in the words and numbers of the page's
 * card (predict/result_words.ts), never a bare label; then, when the map has no colour, a line saying so.
 */
export function burnedInLines(input: ResultInput): string[] {
  const p = input.prediction;
  return [
    CAVEAT,
    `${input.model.name} ${input.model.version}: ${resultLine({ ...p, status: p.verdict.status })}`,
    ...(p.probability <= HEATMAP_FLOOR ? [EMPTY_HEATMAP_LINE] : []),
  ];
}

function lossyAttributes(source: ResultInput['source']): Dataset {
  const lossy = source.lossyCompression;
  if (!lossy) return { LossyImageCompression: '00' };
  return {
    LossyImageCompression: '01',
    ...(lossy.ratios.length ? { LossyImageCompressionRatio: lossy.ratios } : {}),
    ...(lossy.methods.length ? { LossyImageCompressionMethod: lossy.methods } : {}),
  };
}

export async function buildSecondaryCapture(input: ResultInput, heatmapPng: Buffer): Promise<DicomObject> {
  const { source, model } = input;
  const uids = scUids(source, model, input.prediction.operatingPoint);
  const img = await annotateHeatmap(heatmapPng, burnedInLines(input));
  const ds: Dataset = {
    ...commonAttributes('sc', input, uids, SOP_CLASS.secondaryCapture, 'OT'),
    ConversionType: 'WSD', // workstation: a rendered result, not a digitised film
    ImageType: ['DERIVED', 'SECONDARY'],
    DerivationDescription: 'Grad-CAM class activation map of the pneumonia model over the source film',
    SourceImageSequence: [
      { ReferencedSOPClassUID: source.sopClassUid, ReferencedSOPInstanceUID: source.sopInstanceUid },
    ],
    PatientOrientation: '',
    BurnedInAnnotation: 'YES',
    ImageComments: CAVEAT,
    SamplesPerPixel: 3,
    PhotometricInterpretation: 'RGB',
    PlanarConfiguration: 0,
    Rows: img.height,
    Columns: img.width,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    // Written uncompressed, but drawn over the film's pixels: a film that was lossy compressed makes the heat
    // map lossy too, and once 01 the flag is never reset (PS3.3 C.7.6.1.1.5): a reader must not take the film
    // under the colours for the original.
    ...lossyAttributes(source),
    PixelData: [img.rgb.buffer.slice(img.rgb.byteOffset, img.rgb.byteOffset + img.rgb.byteLength)],
    _vrMap: { PixelData: 'OB' },
  };
  return {
    bytes: writePart10(ds),
    sopClassUid: SOP_CLASS.secondaryCapture,
    sopInstanceUid: uids.sopInstanceUid,
    seriesInstanceUid: uids.seriesInstanceUid,
    studyInstanceUid: source.studyInstanceUid,
  };
}
