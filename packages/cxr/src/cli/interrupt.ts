// What Ctrl-C or SIGTERM does to a command that trains (`cxr train`, `cxr experiments seed|shift`): the end of
// an epoch being written is finished first (train/loop.ts), so every epoch whose line was printed is in the
// checkpoint; then one line says where the command stopped and the command line that continues it, and the
// signal ends the process as it would have (exit 130 or 143).
import { epochEndsWritten } from '../train/loop';

/** A word of the command line as a shell reads it back. */
/** `a` as a shell reads it back: quoted where it holds anything but a plain path's characters. */
export const shellWord = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`);

export interface HowToContinue {
  /** Where the command stopped ("interrupted after epoch 3"), read once the epoch's end is written. */
  where(): string;
  /** An option of the command line that --resume replaces (experiments' --overwrite: the two are refused together). */
  replaces?: string;
  /** Said after the command line when `replaces` was given. */
  replacedNote?: string;
  /**
   * Whether --resume will find something to continue (default: yes). A run stopped before it wrote anything (its
   * data still loading) has nothing: --resume is refused there, so the line says to run the command again.
   */
  resumable?(): boolean;
}

/**
 * Installs the SIGINT and SIGTERM handlers; returns what removes them. A second signal while the epoch's end is
 * written stops at once (the handlers are gone by then): checkpoints are written atomically, so the run still
 * continues from the epoch before.
 */
export function sayHowToContinue(how: HowToContinue): () => void {
  const onSignal = async (signal: NodeJS.Signals) => {
    off();
    await epochEndsWritten();
    let where = 'interrupted';
    try {
      where = how.where();
    } catch {
      // A damaged checkpoint: the line still says how to continue, and --resume says what is wrong with it.
    }
    let args = process.argv.slice(2);
    if (how.resumable?.() === false) {
      const again = args.filter((a) => a !== '--resume');
      process.stderr.write(
        `${where}, before anything was written; run it again: cxr ${again.map(shellWord).join(' ')}\n`,
      );
      process.kill(process.pid, signal);
      return;
    }
    const replaced = how.replaces !== undefined && args.includes(how.replaces);
    if (replaced) args = args.filter((a) => a !== how.replaces);
    if (!args.includes('--resume')) args.push('--resume');
    const note = replaced && how.replacedNote ? ` (${how.replacedNote})` : '';
    process.stderr.write(`${where}; continue with: cxr ${args.map(shellWord).join(' ')}${note}\n`);
    process.kill(process.pid, signal);
  };
  const handlers = { SIGINT: () => void onSignal('SIGINT'), SIGTERM: () => void onSignal('SIGTERM') };
  const off = () => {
    process.off('SIGINT', handlers.SIGINT);
    process.off('SIGTERM', handlers.SIGTERM);
  };
  process.on('SIGINT', handlers.SIGINT);
  process.on('SIGTERM', handlers.SIGTERM);
  return off;
}
