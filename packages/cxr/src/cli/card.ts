// `cxr card`: writes a model folder's MODEL_CARD.md again from what the folder records (`--check` only compares).
// The card is a function of cxr.json alone, plus two things the card itself holds: the training command line and
// the hand-written section. So no weights, data or engine are needed, and a card written by an older card
// writer (words since corrected) can be brought up to date without retraining. --check writes nothing and exits
// non-zero when a card differs from the one the folder's records give, so a stale committed card is caught.
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cardCommand, cardOver } from '../models/card';
import { readMeta } from '../models/io';
import { modelDirOrDefault } from '../paths';

const CARD_FILE = 'MODEL_CARD.md';

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

export function register(program: Command): void {
  program
    .command('card')
    .summary("write a model folder's MODEL_CARD.md again from its cxr.json")
    .description(
      "write a model folder's MODEL_CARD.md again from what the folder records (cxr.json; the training command " +
        'and the hand-written section are kept from the card); no weights or data are read',
    )
    .option('--model <dir...>', 'model folders (default: the shipped model)')
    .option('--check', 'write nothing: list the cards that differ from their records and exit 1 if any does')
    .action((o: { model?: string[]; check?: boolean }) => {
      const dirs = o.model?.length ? o.model : [modelDirOrDefault(undefined)];
      let stale = 0;
      for (const dir of dirs) {
        const s = o.check ? cardStatus(dir) : rewriteCard(dir);
        if (s.current) {
          process.stdout.write(`current: ${dir}\n`);
          continue;
        }
        stale++;
        if (o.check) process.stdout.write(`differs: ${dir}: ${s.firstDifference}\n`);
        else {
          // Without a card there is no command line to keep: the new card says none rather than a guessed one.
          const note = s.actual === null ? ' (it had none: written without the training command)' : '';
          process.stdout.write(`rewritten: ${path.join(dir, CARD_FILE)}${note}\n`);
        }
      }
      if (o.check && stale > 0) {
        process.stderr.write(`cxr: ${stale} of ${dirs.length} cards differ from their records (run cxr card)\n`);
        process.exitCode = 1;
      }
    });
}
