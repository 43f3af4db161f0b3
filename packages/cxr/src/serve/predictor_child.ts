// Child-process side of the server's predictor (predictor_process.ts): loads the model once, then
// answers one message per prediction. The network and Grad-CAM run here, so the server's event loop
// (health, history, other uploads) never waits on them, and a native fault in the engine (libtorch)
// ends this process, not the server. Decoding goes one step further out, to a decode pool of worker
// threads (decode_pool.ts), whose deadline ends a hostile file's worker, not this process.
import { initEngine } from '../engine';
import { Predictor } from '../predict/predictor';
import { warmUpImage } from '../predict/predictor_load';
import { DecodePool } from './decode_pool';
import { type EngineMessage, type EngineRequest, type EngineStart, toRemote } from './engine_protocol';

type Send = (m: EngineMessage) => Promise<void>;

async function load(start: EngineStart, send: Send): Promise<Predictor | null> {
  let pool: DecodePool | undefined;
  try {
    await initEngine(start.threads);
    // The pool's warnings (traces of hostile files and memory caps) go to the server's log, and its state to
    // /metrics there, which reads it synchronously: every change is sent.
    const decodes = new DecodePool({
      size: start.decodeWorkers,
      // Not sent once the server is gone: 'disconnect' ends this process (an unhandled EPIPE wrote a trace).
      log: { warn: (obj, msg) => send({ type: 'log', obj, msg }).catch(() => {}) },
      onChange: () => send({ type: 'stats', stats: decodes.stats() }).catch(() => {}),
    });
    pool = decodes;
    // Warmed up here only when told (a restart): the server warms up the first engine itself, through this process.
    const predictor = await Predictor.load(start.dir, {
      oodPolicy: start.oodPolicy,
      limits: start.limits,
      decoder: decodes.decode,
      warmUp: false,
    });
    let warmUpMs: number | undefined;
    if (start.warmUp) {
      const t0 = Date.now();
      await predictor.warmUp(await warmUpImage());
      warmUpMs = Date.now() - t0;
    }
    await send({ type: 'ready', model: predictor.model, notes: predictor.notes, stats: decodes.stats(), warmUpMs });
    return predictor;
  } catch (e) {
    await pool?.close();
    await send({ type: 'failed', error: toRemote(e) });
    return null;
  }
}

function main(): void {
  const channel = process.send?.bind(process);
  if (!channel) throw new Error("predictor_child.js runs as the server's child process (fork), not on its own");
  // A message that cannot be sent is logged by the server as this process's end, or is that prediction's error.
  const send: Send = (m) =>
    new Promise((resolve, reject) => {
      channel(m, undefined, undefined, (e: Error | null) => (e ? reject(e) : resolve()));
    });
  // The server gone (ended, killed): nothing left to answer.
  process.on('disconnect', () => process.exit(0));
  // Ctrl-C in a terminal and a service manager's stop signal the whole group: the server closes gracefully,
  // finishing the predictions in flight here, and ends this process itself (dispose() kills it; a server that
  // is killed closes the channel).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});
  let predictor: Promise<Predictor | null> | null = null;
  process.on('message', (m: EngineRequest) => {
    if (m.type === 'start') {
      predictor ??= load(m, send);
      return;
    }
    void (async () => {
      const p = await predictor;
      if (!p) return; // never sent: the server sends tasks only after `ready`
      const bytes = Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength);
      try {
        const value = await (m.op === 'warmUp' ? p.warmUp(bytes) : p.predict(bytes, m.opts));
        // A reply that cannot be sent (a field that does not clone) is that prediction's error.
        await send({ type: 'reply', id: m.id, ok: true, value }).catch((e: unknown) =>
          send({ type: 'reply', id: m.id, ok: false, error: toRemote(e) }),
        );
      } catch (e) {
        await send({ type: 'reply', id: m.id, ok: false, error: toRemote(e) });
      }
    })().catch(() => {
      /* the channel closed: the server is gone, and 'disconnect' ends this process */
    });
  });
}

if (require.main === module) main();
