// A model folder's card against the one its records give (cxr.json, plus the card's own training command and
// hand-written section): `cxr card` rewrites a stale one, `--check` and the committed-cards test only compare.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cardCommand, cardOver } from './card';
import { readMeta } from './io';

export const CARD_FILE = 'MODEL_CARD.md';

/** A folder's card against the one its records give. */
export interface CardStatus {
  dir: string;
  /** The card as the folder's cxr.json (and its card's command and hand-written section) give it. */
  expected: string;
  /** The card on disk; null when the folder has none. */
  actual: string | null;
  current: boolean;
  /** Where the two first differ, for a reader: 'line 87: "..." (now: "...")'; null when current. */
  firstDifference: string | null;
}

/** The folder's card against the one its records give; throws (readMeta's words) when cxr.json is missing or bad. */
export function cardStatus(dir: string): CardStatus {
  const meta = readMeta(dir);
  const file = path.join(dir, CARD_FILE);
  const actual = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  const expected = cardOver(actual ?? '', meta, cardCommand(dir));
  const current = actual === expected;
  return { dir, expected, actual, current, firstDifference: current ? null : firstDifference(actual, expected) };
}

function firstDifference(actual: string | null, expected: string): string {
  if (actual === null) return `no ${CARD_FILE}`;
  const a = actual.split('\n');
  const e = expected.split('\n');
  let i = 0;
  while (i < a.length && i < e.length && a[i] === e[i]) i++;
  const cut = (s: string | undefined) => (s === undefined ? '(end of card)' : JSON.stringify(s.slice(0, 100)));
  return `line ${i + 1}: ${cut(a[i])} (from the records: ${cut(e[i])})`;
}

/** Writes the folder's card from its records; returns what it found before (an already current card is left). */
export function rewriteCard(dir: string): CardStatus {
  const status = cardStatus(dir);
  if (!status.current) fs.writeFileSync(path.join(dir, CARD_FILE), status.expected);
  return status;
}
