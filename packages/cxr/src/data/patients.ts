// Patient identity from Kaggle chest_xray file names. Images of one child must never end up on
// both sides of a train/validation split, otherwise validation measures memorised anatomy.
//
//   person1946_bacteria_4874.jpeg  -> person1946      (PNEUMONIA; the "_1" variant too)
//   IM-0429-0001-0002.jpeg         -> IM-0429         (NORMAL)
//   NORMAL2-IM-1427-0001.jpeg      -> NORMAL2-IM-1427 (NORMAL; a separate numbering, so
//                                                      NORMAL2-IM-0429 is not IM-0429)
import * as path from 'node:path';

const PERSON = /^(person\d+)_/i;
const NORMAL_IM = /^((?:NORMAL2-)?IM-\d+)-/i;

export interface PatientId {
  id: string;
  /** False when the name follows no known pattern; the image then counts as its own patient. */
  recognised: boolean;
}

export function parsePatient(fileName: string): PatientId {
  const base = path.basename(fileName);
  const m = PERSON.exec(base) ?? NORMAL_IM.exec(base);
  if (m) return { id: canonical(m[1]), recognised: true };
  // A lone image is the safe fallback: it cannot leak across the split with anything.
  return { id: `file:${base}`, recognised: false };
}

// Case-folded prefixes keep "Person12_" and "person12_" together without touching the number.
function canonical(id: string): string {
  return id
    .replace(/^person/i, 'person')
    .replace(/^normal2-im-/i, 'NORMAL2-IM-')
    .replace(/^im-/i, 'IM-');
}
