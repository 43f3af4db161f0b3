// One prediction as a DICOM Comprehensive SR document (the SR class that allows numbers, so the
// probability and threshold are NUM items, not text). Content tree, all CONTAINS under the root:
//
//   CONTAINER (LN 18748-4 "Diagnostic imaging report")
//     CODE  (99CXR ASSESSMENT "Assessment status") = (99CXR ASSESSED | CANNOT-ASSESS | OUTSIDE-POP)
//     TEXT  (99CXR RESULT "Result") = the result in the page card's words (predict/result_words.ts resultLine)
//     CODE  (SCT 233604007 "Pneumonia") = (SCT 373066001 "Yes") | (SCT 373067005 "No")   only when assessed
//     NUM   (99CXR P-PNEUMONIA "Calibrated probability of pneumonia"), UCUM "1"   not when cannot-assess
//     NUM   (99CXR THRESHOLD "Decision threshold"), UCUM "1"
//     TEXT  (99CXR OPERATING-POINT "Operating point")
//     TEXT  (DCM 111001 "Algorithm Name"), (DCM 111003 "Algorithm Version"), (99CXR MODEL-SHA256 "Model SHA-256")
//     TEXT  (99CXR INPUT-WARNING "Input warning")   one per warning, if any
//     TEXT  (DCM 121106 "Comment") = the caveat
//     IMAGE (DCM 121112 "Source of Measurement") -> the source film
//     IMAGE (99CXR HEATMAP "Grad-CAM heat map")  -> the secondary capture, when there is one
//
// 99CXR is a private coding scheme (PS3.16 8.2: designators starting with 99 are local).
// The finding and the number follow the verdict as the page shows them (predict/verdict.ts): a film the
// model cannot assess gets neither, one outside the intended population the number for reference only,
// so that no viewer shows "Pneumonia: Yes" on a blank image or an adult's film. The Result text says the finding
// as the card does, the number against the threshold: a viewer that shows "Pneumonia: Yes" beside a probability
// of 0.18 shows the reason next to it, "Above the pneumonia threshold (p ≥ 15.7 %): 18.0 % probability ...".
import { resultLine } from '../predict/result_words';
import type { VerdictStatus } from '../predict/verdict';
import { CAVEAT, SOP_CLASS } from './identity';
import { type Dataset, writePart10 } from './part10';
import { commonAttributes, type DicomObject, type ResultInput, srUids } from './result';

interface Code {
  CodeValue: string;
  CodingSchemeDesignator: string;
  CodeMeaning: string;
}

// Code Value and Coding Scheme Designator are SH (at most 16 characters), Code Meaning LO (64; PS3.5 6.2): a
// longer local code makes the report invalid (DCMTK's SR schema rejects it), so a code that breaks this fails
// at load, not in the PACS.
const code = (value: string, scheme: string, meaning: string): Code => {
  if (value.length > 16 || scheme.length > 16 || meaning.length > 64) {
    throw new Error(`SR code (${value}, ${scheme}, "${meaning}") is longer than DICOM allows (16, 16, 64)`);
  }
  return { CodeValue: value, CodingSchemeDesignator: scheme, CodeMeaning: meaning };
};

export const CODES = {
  report: code('18748-4', 'LN', 'Diagnostic imaging report'),
  assessment: code('ASSESSMENT', '99CXR', 'Assessment status'),
  result: code('RESULT', '99CXR', 'Result'),
  assessed: code('ASSESSED', '99CXR', 'Assessed'),
  cannotAssess: code('CANNOT-ASSESS', '99CXR', 'Cannot be assessed'),
  outsidePopulation: code('OUTSIDE-POP', '99CXR', 'Outside the intended population'),
  pneumonia: code('233604007', 'SCT', 'Pneumonia'),
  yes: code('373066001', 'SCT', 'Yes'),
  no: code('373067005', 'SCT', 'No'),
  probability: code('P-PNEUMONIA', '99CXR', 'Calibrated probability of pneumonia'),
  threshold: code('THRESHOLD', '99CXR', 'Decision threshold'),
  operatingPoint: code('OPERATING-POINT', '99CXR', 'Operating point'),
  algorithmName: code('111001', 'DCM', 'Algorithm Name'),
  algorithmVersion: code('111003', 'DCM', 'Algorithm Version'),
  modelSha256: code('MODEL-SHA256', '99CXR', 'Model SHA-256'),
  inputWarning: code('INPUT-WARNING', '99CXR', 'Input warning'),
  comment: code('121106', 'DCM', 'Comment'),
  source: code('121112', 'DCM', 'Source of Measurement'),
  heatmap: code('HEATMAP', '99CXR', 'Grad-CAM heat map'),
  unitless: code('1', 'UCUM', 'no units'),
};

const item = (valueType: string, concept: Code, rest: Dataset): Dataset => ({
  RelationshipType: 'CONTAINS',
  ValueType: valueType,
  ConceptNameCodeSequence: [concept],
  ...rest,
});

const text = (concept: Code, value: string): Dataset => item('TEXT', concept, { TextValue: value });

// DS holds at most 16 characters: write the number, not JavaScript's 17-digit rendering.
const num = (concept: Code, value: number): Dataset =>
  item('NUM', concept, {
    MeasuredValueSequence: [{ MeasurementUnitsCodeSequence: [CODES.unitless], NumericValue: value.toFixed(6) }],
  });

const image = (concept: Code, ref: { sopClassUid: string; sopInstanceUid: string }): Dataset =>
  item('IMAGE', concept, {
    ReferencedSOPSequence: [{ ReferencedSOPClassUID: ref.sopClassUid, ReferencedSOPInstanceUID: ref.sopInstanceUid }],
  });

/** The heat map secondary capture the report points to. */
export type HeatmapRef = Pick<DicomObject, 'sopClassUid' | 'sopInstanceUid' | 'seriesInstanceUid'>;

/** Hierarchical SOP instance reference (PS3.3 C.17.2.1): study → series → instances. */
function evidence(studyInstanceUid: string, refs: HeatmapRef[]): Dataset[] {
  const series = new Map<string, Dataset[]>();
  for (const r of refs) {
    const list = series.get(r.seriesInstanceUid) ?? [];
    list.push({ ReferencedSOPClassUID: r.sopClassUid, ReferencedSOPInstanceUID: r.sopInstanceUid });
    series.set(r.seriesInstanceUid, list);
  }
  return [
    {
      StudyInstanceUID: studyInstanceUid,
      ReferencedSeriesSequence: [...series].map(([uid, sops]) => ({
        SeriesInstanceUID: uid,
        ReferencedSOPSequence: sops,
      })),
    },
  ];
}

const STATUS_CODE: Record<VerdictStatus, Code> = {
  assessed: CODES.assessed,
  'cannot-assess': CODES.cannotAssess,
  'outside-population': CODES.outsidePopulation,
};

/** The report for one prediction on one source film, as a Part-10 Comprehensive SR. */
export function buildSr(input: ResultInput, heatmap?: HeatmapRef): DicomObject {
  const { source, prediction: p, model } = input;
  const uids = srUids(source, model, p.operatingPoint);
  const positive = p.label === 'PNEUMONIA';
  const status = p.verdict.status;
  const content: Dataset[] = [
    item('CODE', CODES.assessment, { ConceptCodeSequence: [STATUS_CODE[status]] }),
    text(CODES.result, resultLine({ ...p, status })),
    ...(status === 'assessed'
      ? [item('CODE', CODES.pneumonia, { ConceptCodeSequence: [positive ? CODES.yes : CODES.no] })]
      : []),
    ...(status === 'cannot-assess' ? [] : [num(CODES.probability, p.probability)]),
    num(CODES.threshold, p.threshold),
    text(CODES.operatingPoint, p.operatingPoint),
    text(CODES.algorithmName, model.name),
    text(CODES.algorithmVersion, model.version),
    text(CODES.modelSha256, model.sha256),
    ...p.warnings.map((w) => text(CODES.inputWarning, w)),
    text(CODES.comment, CAVEAT),
    image(CODES.source, { sopClassUid: source.sopClassUid, sopInstanceUid: source.sopInstanceUid }),
    ...(heatmap ? [image(CODES.heatmap, heatmap)] : []),
  ];
  const ds: Dataset = {
    ...commonAttributes('sr', input, uids, SOP_CLASS.comprehensiveSr, 'SR'),
    ReferencedPerformedProcedureStepSequence: [],
    PerformedProcedureCodeSequence: [],
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    PreliminaryFlag: 'PRELIMINARY',
    // The film the report is about; the heat map is other evidence, produced alongside.
    CurrentRequestedProcedureEvidenceSequence: evidence(source.studyInstanceUid, [
      {
        sopClassUid: source.sopClassUid,
        sopInstanceUid: source.sopInstanceUid,
        seriesInstanceUid: source.seriesInstanceUid,
      },
    ]),
    ...(heatmap ? { PertinentOtherEvidenceSequence: evidence(source.studyInstanceUid, [heatmap]) } : {}),
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [CODES.report],
    ContinuityOfContent: 'SEPARATE',
    ContentSequence: content,
  };
  return {
    bytes: writePart10(ds),
    sopClassUid: SOP_CLASS.comprehensiveSr,
    sopInstanceUid: uids.sopInstanceUid,
    seriesInstanceUid: uids.seriesInstanceUid,
    studyInstanceUid: source.studyInstanceUid,
  };
}
