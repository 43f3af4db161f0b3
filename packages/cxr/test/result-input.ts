// What cxr writes into the PACS for the sample film (dicom_out's ResultInput), for the tests of the SR and SC:
// a PNEUMONIA answer of 0.18 against the balanced threshold 0.157, assessed, written at a fixed time.
import * as fs from 'node:fs';
import { readSource, type ResultInput } from '../src/dicom_out';
import { DICOM_FILE } from './serve-fixtures';

export type ResultPrediction = ResultInput['prediction'];

const source = readSource(fs.readFileSync(DICOM_FILE));

/** The sample answer; `over` changes any part of it. */
export const samplePrediction = (over: Partial<ResultPrediction> = {}): ResultPrediction => ({
  probability: 0.18,
  label: 'PNEUMONIA',
  operatingPoint: 'balanced',
  threshold: 0.157,
  warnings: [],
  verdict: { status: 'assessed', reasons: [] },
  ...over,
});

/** The sample film's result: `p` by the model tiny-test 0.0.1 (or the name and version given), at 2024-05-01. */
export const sampleResult = (
  p: ResultPrediction = samplePrediction(),
  model: { name?: string; version?: string } = {},
): ResultInput => ({
  source,
  prediction: p,
  model: { name: 'tiny-test', version: '0.0.1', sha256: 'a'.repeat(64), ...model },
  now: new Date('2024-05-01T12:34:56Z'),
});
