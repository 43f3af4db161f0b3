// The SHA-256 of bytes or text as lowercase hex: how cxr names a film by its content (result keys, job ids,
// the audit log's input_sha256, the cache, suspect images), one function so that every name is made alike.
import { createHash } from 'node:crypto';

export function sha256Of(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
