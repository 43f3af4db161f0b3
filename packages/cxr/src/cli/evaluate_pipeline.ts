// What the shipped pipeline would say of each film `cxr evaluate` scores. The evaluation's headline
// metrics cover every film of the folder, as they always have; but `cxr predict` and the server answer
// "cannot assess" for a film the not-a-chest-X-ray gate or the image checks refuse, and show no finding
// for it. So each film also goes through the Predictor (same decode, gate, checks and verdict as a
// prediction), and the evaluation reports how many films it would not assess and the metrics over the
// films it does.
import * as os from 'node:os';
import { DecodeError, readErrorCode, readImageFile } from '../data/decode';
import { filmFormatOfFile } from '../data/dicom';
import type { ImageRecord } from '../data/dataset';
import { forEachConcurrent } from '../data/pool';
import { startProgress } from '../data/progress';
import { evaluateKept } from '../eval/metrics';
import type { Metrics } from '../eval/metrics_schema';
import { InputError } from '../predict/errors';
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

export type PipelineAnswer =
  /** `reasons`: why the status is not 'assessed', in the words `cxr predict` gives them (empty when it is). */
  | { status: VerdictStatus; probability: number; reasons: string[] }
  /**
   * `unread`: the file system would not give the file (gone since the folder was listed, no permission, an
   * I/O error): no reader read it, so it is unreadable, not a film the pipeline refuses.
   */
  | { error: string; unread?: true };

/** What a read error's code means, for people (data/decode.ts readImageFile names the code only). */
const READ_ERRORS: Record<string, string> = {
  ENOENT: 'the file is gone (deleted or moved after the folder was listed)',
  ENOTDIR: 'the file is gone (its folder was replaced after the folder was listed)',
  EACCES: 'permission denied (this user may not read it)',
  EPERM: 'permission denied (this user may not read it)',
  EIO: 'an input/output error (a failing disk, or a network share that does not answer)',
  ESTALE: 'the network share it is on was remounted or went away',
  ENOTCONN: 'the network share it is on is not connected',
  ETIMEDOUT: 'the network share it is on does not answer',
  EHOSTDOWN: 'the host of the network share it is on is down',
};

/**
 * A read failure (a DecodeError READ_FAILED, "cannot read (ENOENT)") with what it means where its file-system
 * code is a common one: "cannot read (ENOENT): the file is gone (deleted or moved after ...)".
 */
export function readFailure(err: DecodeError): string {
  const code = readErrorCode(err);
  return code && READ_ERRORS[code] ? `${err.detail}: ${READ_ERRORS[code]}` : err.detail;
}

/** One file through the Predictor, as `cxr predict` reads it (predict/batch.ts predictFile), telling a read apart. */
async function answerOf(predictor: Predictor, file: string, operatingPoint: string): Promise<PipelineAnswer> {
  let bytes: Buffer;
  try {
    bytes = await readImageFile(file);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    // Too large is the pipeline's refusal (413); a file it cannot read at all is no film to refuse.
    return e.code === 'READ_FAILED' ? { error: readFailure(e), unread: true } : { error: e.detail };
  }
  try {
    const p = await predictor.predict(bytes, { operatingPoint });
    return { status: p.verdict.status, probability: p.probability, reasons: p.verdict.reasons.map((r) => r.message) };
  } catch (e) {
    if (e instanceof InputError) return { error: e.message };
    throw e;
  }
}

/** The pipeline's answers, and what stood behind them. */
export interface PipelineRun {
  answers: PipelineAnswer[];
  /** What the Predictor found at load that limits its answers (no gate, a gate of other weights): its notes. */
  notes: string[];
  /** The not-a-chest-X-ray gate the films went through; null where it is off (the image checks alone refuse). */
  oodGate: Predictor['oodGate'];
}

/** Each file through the model's Predictor (warn policy: the gate's findings become the verdict, not an error). */
export async function pipelineAnswers(
  modelDir: string,
  files: readonly string[],
  opts: { operatingPoint: string; progress?: boolean },
): Promise<PipelineRun> {
  const predictor = await Predictor.load(modelDir, { warmUp: false });
  const found = { notes: [...predictor.notes], oodGate: predictor.oodGate };
  const out: PipelineAnswer[] = new Array(files.length);
  const bar = startProgress('screen', files.length, opts.progress ?? false);
  try {
    await forEachConcurrent(files, Math.max(1, os.availableParallelism()), async (file, i) => {
      out[i] = await answerOf(predictor, file, opts.operatingPoint);
      bar.tick();
    });
  } finally {
    bar.stop();
    predictor.dispose();
  }
  return { answers: out, ...found };
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
