// What the shipped pipeline would say of each film `cxr evaluate` scores. The evaluation's headline
// metrics cover every film of the folder, as they always have; but `cxr predict` and the server answer
// "cannot assess" for a film the not-a-chest-X-ray gate or the image checks refuse, and show no finding
// for it. So each film also goes through the Predictor (same decode, gate, checks and verdict as a
// prediction), and the evaluation reports how many films it would not assess and the metrics over the
// films it does.
import * as os from 'node:os';
import { filmFormatOfFile } from '../data/dicom';
import type { ImageRecord } from '../data/dataset';
import { forEachConcurrent } from '../data/pool';
import { startProgress } from '../data/progress';
import { evaluateKept } from '../eval/metrics';
import type { Metrics } from '../eval/metrics_schema';
import { predictFile } from '../predict/batch';
import { Predictor } from '../predict/predictor';
import type { VerdictStatus } from '../predict/verdict';

/**
 * The records whose bytes are DICOM. The preprocessed cache (data/cache.ts) decodes JPEG and PNG only; these
 * are read through the Predictor's decoder instead, which reads DICOM as a prediction does.
 */
export async function dicomPaths(records: readonly ImageRecord[]): Promise<Set<string>> {
  const found = new Set<string>();
  await forEachConcurrent(records, 8, async (r) => {
    // Unreadable here is unreadable to the cache too, which names it.
    if ((await filmFormatOfFile(r.path).catch(() => null)) === 'dicom') found.add(r.path);
  });
  return found;
}

export type PipelineAnswer = { status: VerdictStatus; probability: number } | { error: string };

/** Each file through the model's Predictor (warn policy: the gate's findings become the verdict, not an error). */
export async function pipelineAnswers(
  modelDir: string,
  files: readonly string[],
  opts: { operatingPoint: string; progress?: boolean },
): Promise<PipelineAnswer[]> {
  const predictor = await Predictor.load(modelDir, { warmUp: false });
  const out: PipelineAnswer[] = new Array(files.length);
  const bar = startProgress('screen', files.length, opts.progress ?? false);
  try {
    await forEachConcurrent(files, Math.max(1, os.availableParallelism()), async (file, i) => {
      const r = await predictFile(predictor, file, { operatingPoint: opts.operatingPoint });
      out[i] = r.ok ? { status: r.prediction.verdict.status, probability: r.prediction.probability } : r;
      bar.tick();
    });
  } finally {
    bar.stop();
    predictor.dispose();
  }
  return out;
}

/**
 * What the pipeline says of one film: a verdict, or 'refused' where it answers with an input error instead
 * (the server's 422: a film too large, a DICOM it cannot decode) though the evaluation could score it.
 */
export type PipelineStatus = VerdictStatus | 'refused';

export interface PipelineSummary {
  /**
   * How many of the evaluated films the pipeline would call each status. `refused` counts films the evaluation
   * read and scored that the pipeline would answer with an input error (the server's 413/415/422); a file no
   * reader can read is in no count here but in the evaluation's `unreadable` list, since it has no score.
   */
  verdicts: { assessed: number; cannotAssess: number; outsidePopulation: number; refused: number };
  /** The metrics over the films it calls 'assessed' only (null when there are none). */
  assessedOnly: Metrics | null;
}

export function summarise(
  statuses: readonly PipelineStatus[],
  labels: readonly number[],
  probs: readonly number[],
  threshold: number,
): PipelineSummary {
  const count = (s: PipelineStatus) => statuses.filter((x) => x === s).length;
  return {
    verdicts: {
      assessed: count('assessed'),
      cannotAssess: count('cannot-assess'),
      outsidePopulation: count('outside-population'),
      refused: count('refused'),
    },
    assessedOnly: evaluateKept(labels, probs, (i) => statuses[i] === 'assessed', { threshold }),
  };
}
