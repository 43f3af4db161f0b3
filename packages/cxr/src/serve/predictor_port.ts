// What the server needs from a predictor: the subset of predict/predictor.ts's Predictor that
// the routes use. Kept structural so that tests can serve a stand-in and the server does not
// depend on how predictions are computed.
import type { ModelMeta } from '../models/metadata';

export interface ServePredictOptions {
  operatingPoint?: string;
  heatmap?: boolean;
  thumbnail?: boolean;
}

export interface ServePrediction {
  probability: number;
  logit: number;
  label: 'NORMAL' | 'PNEUMONIA';
  operatingPoint: string;
  threshold: number;
  warnings: string[];
  ood: { score: number; threshold: number; outOfDistribution: boolean } | null;
  input: { kind: 'jpeg' | 'png' | 'dicom'; width: number; height: number; sha256: string; bytes: number };
  heatmapPng?: Buffer;
  thumbnailPng?: Buffer;
  timings: { decodeMs: number; inferMs: number; heatmapMs?: number; totalMs: number };
}

export interface ServePredictor {
  readonly model: { name: string; version: string; sha256: string; dir: string; meta: ModelMeta };
  predict(bytes: Buffer, opts?: ServePredictOptions): Promise<ServePrediction>;
  dispose(): void;
}

/**
 * A client's mistake reported by the predictor (predict/errors.ts's InputError): a 4xx status
 * and a machine-readable code. Recognised by shape so that any such error maps to its status.
 */
export interface ClientInputError extends Error {
  code: string;
  status: number;
}

export function isClientInputError(e: unknown): e is ClientInputError {
  if (!(e instanceof Error)) return false;
  const { code, status } = e as Partial<ClientInputError>;
  return typeof code === 'string' && typeof status === 'number' && status >= 400 && status < 500;
}
