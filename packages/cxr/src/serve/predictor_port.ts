// What the server needs from a predictor: the subset of predict/predictor.ts's Predictor that
// the routes use. Kept structural so that tests can serve a stand-in and the server does not
// depend on how predictions are computed.
import type { Predictor } from '../predict/predictor';

/** What the server's decode pool (decode_pool.ts) is doing, read by /metrics. */
export interface DecodePoolStats {
  size: number;
  /** Workers decoding a file now. */
  busy: number;
  /** Decodes waiting for a free worker. */
  queued: number;
  /** Workers replaced after a crash, an out-of-memory exit or a deadline, since the pool started. */
  restarts: number;
}

/**
 * Whether the model can answer now: `restarting` after its process ended, until a new one has loaded it;
 * `unavailable` when that load failed (tried again by itself, on a backoff). /health answers 503 but for `ready`.
 */
export const ENGINE_STATES = ['ready', 'restarting', 'unavailable'] as const;
export type EngineState = (typeof ENGINE_STATES)[number];

/** How long a client is asked to wait while the engine restarts: a new process loads the model in seconds. */
export const ENGINE_RETRY_AFTER_S = 5;

/**
 * Structural, so that tests can serve a stand-in. decodeStats: when decoding runs in a worker pool (/metrics);
 * engineState and engineRestarts: when the model runs in a process that may end (predictor_process.ts); without
 * them it is always ready.
 */
export type ServePredictor = Pick<Predictor, 'model' | 'predict' | 'dispose' | 'warmUp'> & {
  decodeStats?: () => DecodePoolStats;
  engineState?: () => EngineState;
  /** Engine processes that ended and were replaced since the server started (/metrics). */
  engineRestarts?: () => number;
};

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
