// A writable stream that keeps what is written to it, for tests of commands and batches that write to a stream.
import { Writable } from 'node:stream';

/** Text written to a stream, as it stands at any moment. */
export function sink(): { out: Writable; text: () => string } {
  const chunks: string[] = [];
  const out = new Writable({
    write(c, _e, cb) {
      chunks.push(String(c));
      cb();
    },
  });
  return { out, text: () => chunks.join('') };
}
