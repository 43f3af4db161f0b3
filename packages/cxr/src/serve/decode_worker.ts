// Worker-thread side of the decode pool (decode_pool.ts): decodes one upload per message.
// Errors cross the thread boundary as {code, message}: input errors keep their code (so the
// HTTP status is the same as in-process), anything else is reported as a bug.
import { parentPort } from 'node:worker_threads';
import { decodeInput, type DecodeRequest } from '../predict/decode_input';
import { InputError } from '../predict/errors';

export interface DecodeTask {
  id: number;
  bytes: Uint8Array;
  req: DecodeRequest;
}

parentPort?.on('message', (task: DecodeTask) => {
  const bytes = Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength);
  decodeInput(bytes, task.req).then(
    (value) => parentPort!.postMessage({ id: task.id, ok: true, value }),
    (e: unknown) => {
      const err = InputError.from(e);
      parentPort!.postMessage(
        err instanceof InputError
          ? { id: task.id, ok: false, code: err.code, message: err.message }
          : { id: task.id, ok: false, message: e instanceof Error ? (e.stack ?? e.message) : String(e) },
      );
    },
  );
});

// The modules above are loaded: tell the pool that tasks may come (and their deadlines start).
parentPort?.postMessage({ ready: true });
