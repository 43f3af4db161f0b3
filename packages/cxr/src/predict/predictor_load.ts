// What Predictor.load reads before it answers: the model folder, its failures as one error class with a code a
// program can branch on (the messages come from models/, where each is raised), and the warm-up image.
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { type LoadedModel, loadModel, readMeta } from '../models/io';

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

/** A model folder Predictor.load could not load; `message` names the file and what to do, `cause` is the original. */
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
 * loadModel, its failure as a ModelLoadError. The errors are raised in many places of models/ (cxr.json, the
 * weight manifest, each member's files), so the code is found here afterwards from what is on disk, in the
 * order loadModel reads it, instead of from the words of each message.
 */
export async function loadPredictorModel(dir: string): Promise<LoadedModel> {
  try {
    return await loadModel(dir);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    throw new ModelLoadError(loadFailure(dir, e), dir, message, { cause: e });
  }
}

function loadFailure(dir: string, e: unknown): ModelLoadErrorCode {
  // Told by the error itself first: looking at the disk again would meet the same refusal and blame the folder.
  const errno = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof errno === 'string' && SYSTEM_ERRNO.has(errno)) return 'SYSTEM';
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (!st) return 'NOT_FOUND';
  if (!st.isDirectory()) return 'NOT_A_MODEL';
  try {
    fs.accessSync(path.join(dir, 'cxr.json'), fs.constants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'EPERM' ? 'UNREADABLE' : 'NOT_A_MODEL';
  }
  try {
    readMeta(dir);
  } catch {
    return 'BAD_CONFIG';
  }
  // A weight file this user may not read is the folder's permissions, not damaged weights.
  return errno === 'EACCES' || errno === 'EPERM' ? 'UNREADABLE' : 'BAD_WEIGHTS';
}

/** A chest-like synthetic image for the warm-up run: bright borders and mediastinum, dark lungs. */
export async function warmUpImage(): Promise<Buffer> {
  const w = 320;
  const h = 320;
  const px = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const lung =
        ((x - 100) / 60) ** 2 + ((y - 150) / 100) ** 2 < 1 || ((x - 220) / 60) ** 2 + ((y - 150) / 100) ** 2 < 1;
      px[y * w + x] = lung ? 60 + ((x * 7 + y * 3) % 20) : 190;
    }
  }
  return sharp(px, { raw: { width: w, height: h, channels: 1 } })
    .png()
    .toBuffer();
}
