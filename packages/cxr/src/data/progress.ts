// A progress bar on stderr for long data jobs, shown only on a terminal so that logs and CI
// output stay free of redraw sequences.
// cli-progress is loaded only when a bar is shown: batch prediction (runBatch) imports this module and is part of
// the library entry `@cxr/app/predict`, whose programs should not load a command line's packages they never use.
import type * as CliProgress from 'cli-progress';

export interface Progress {
  tick(n?: number): void;
  stop(): void;
}

export function startProgress(label: string, total: number, enabled = process.stderr.isTTY === true): Progress {
  if (!enabled || total === 0) return { tick() {}, stop() {} };
  const { SingleBar, Presets } = require('cli-progress') as typeof CliProgress;
  const bar = new SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} {percentage}% eta {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
    },
    Presets.shades_classic,
  );
  bar.start(total, 0);
  return { tick: (n = 1) => bar.increment(n), stop: () => bar.stop() };
}
