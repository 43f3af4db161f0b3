// `cxr card`: writes a model folder's MODEL_CARD.md again from what the folder records (`--check` only compares).
// The card is a function of cxr.json alone, plus two things the card itself holds: the training command line and
// the hand-written section. So no weights, data or engine are needed, and a card written by an older card
// writer (words since corrected) can be brought up to date without retraining. --check writes nothing and exits
// non-zero when a card differs from the one the folder's records give, so a stale committed card is caught.
import { Command } from 'commander';
import * as path from 'node:path';
import { CARD_FILE, cardStatus, rewriteCard } from '../models/card_status';
import { modelDirOrDefault } from '../paths';

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
