// A model folder's load failure as one error class with a code a program can branch on. It sits with loadModel
// (models/io.ts), not above it, so that every caller of loadModel (Predictor.load, runEvaluation, runBatch, the
// training and robustness commands) gets the same class and codes; the messages come from where each is raised.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseMeta } from './metadata';

/**
 * Why a model folder could not be loaded:
 * - NOT_FOUND: no such file or folder;
 * - NOT_A_MODEL: a file, or a folder without cxr.json;
 * - UNREADABLE: cxr.json or a weight file is there but this user may not read it;
 * - BAD_CONFIG: cxr.json is not valid JSON or not a valid cxr.json;
 * - BAD_WEIGHTS: a model.json or weight file is missing, damaged, cut short or from another model;
 * - SYSTEM: the system refused the load a resource (too many open files, memory, an I/O error): the folder may
 *   be sound, and the same load may succeed later.
 */
export type ModelLoadErrorCode = 'NOT_FOUND' | 'NOT_A_MODEL' | 'UNREADABLE' | 'BAD_CONFIG' | 'BAD_WEIGHTS' | 'SYSTEM';

// The file system's refusals that say nothing about the folder: a program retries these, not fixes the model.
const SYSTEM_ERRNO = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'EIO', 'EAGAIN', 'EBUSY', 'ESTALE', 'ETIMEDOUT', 'EINTR']);

/** A model folder that could not be loaded; `message` names the file and what to do, `cause` is the original. */
export class ModelLoadError extends Error {
  constructor(
    readonly code: ModelLoadErrorCode,
    readonly dir: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ModelLoadError';
  }
}

/**
 * A failure of loading `dir` as a ModelLoadError. The errors are raised in many places of models/ (cxr.json, the
 * weight manifest, each member's files), so the code is found here afterwards from what is on disk, in the order
 * loadModel reads it, instead of from the words of each message.
 */
export function modelLoadError(dir: string, e: unknown): ModelLoadError {
  if (e instanceof ModelLoadError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new ModelLoadError(loadFailure(dir, e), dir, message, { cause: e });
}

function loadFailure(dir: string, e: unknown): ModelLoadErrorCode {
  // Told by the error itself first: looking at the disk again would meet the same refusal and blame the folder.
  const errno = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof errno === 'string' && SYSTEM_ERRNO.has(errno)) return 'SYSTEM';
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (!st) return 'NOT_FOUND';
  if (!st.isDirectory()) return 'NOT_A_MODEL';
  const meta = path.join(dir, 'cxr.json');
  try {
    fs.accessSync(meta, fs.constants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'EPERM' ? 'UNREADABLE' : 'NOT_A_MODEL';
  }
  try {
    parseMeta(JSON.parse(fs.readFileSync(meta, 'utf8')), meta);
  } catch {
    return 'BAD_CONFIG';
  }
  // A weight file this user may not read is the folder's permissions, not damaged weights.
  return errno === 'EACCES' || errno === 'EPERM' ? 'UNREADABLE' : 'BAD_WEIGHTS';
}
