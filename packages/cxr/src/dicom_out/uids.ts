// Deterministic DICOM UIDs: the same inputs always give the same UID, so writing a result twice
// produces the same SOP instance and the PACS stores it once. The UID is the 2.25 form (PS3.5
// B.2): a UUID as one decimal integer; the UUID here is version 8 (custom), built from SHA-256.
import * as crypto from 'node:crypto';

/** A UID that is a pure function of `parts` (order matters; parts are joined unambiguously). */
export function derivedUid(...parts: string[]): string {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(`${Buffer.byteLength(p)}:${p};`);
  const b = h.digest().subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x80; // version 8
  b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
  return `2.25.${BigInt(`0x${b.toString('hex')}`).toString(10)}`;
}

const UID_RE = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;

/** A syntactically valid UID (PS3.5 9.1): digits and dots, no leading zeros, at most 64 characters. */
export function isUid(s: string): boolean {
  return s.length <= 64 && UID_RE.test(s);
}
