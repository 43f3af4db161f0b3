// A progress bar on stderr for long data jobs, shown only on a terminal so that logs and CI
// output stay free of redraw sequences.
import { SingleBar, Presets } from 'cli-progress';

export interface Progress {
  tick(n?: number): void;
  stop(): void;
}

export function startProgress(label: string, total: number, enabled = process.stderr.isTTY === true): Progress {
  if (!enabled || total === 0) return { tick() {}, stop() {} };
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
