// Loads the N-API addon (native/*.cc); its functions' types are in native_ops.ts.
import * as path from 'node:path';
import type { Native } from './native_ops';

export type * from './native_ops';

function load(): Native {
  // libgomp (which libtorch loads) reads its settings once, when the addon loads it. By default
  // its workers spin after each parallel region; whenever the machine has more runnable threads
  // than cores they take the core the JS thread needs next, and every op stalls (predict and
  // training steps several times slower under load). Waiting passively costs a futex wake per
  // parallel region. The user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
    process.env.OMP_WAIT_POLICY = 'PASSIVE';
  }
  const candidates = [
    path.join(__dirname, '..', '..', 'build', 'Release', 'aten.node'),
    path.join(__dirname, '..', 'build', 'Release', 'aten.node'),
  ];
  let lastError: unknown;
  for (const file of candidates) {
    try {
      return require(file) as Native;
    } catch (e) {
      lastError = e;
    }
  }
  throw new Error(
    `@cxr/backend-aten: the native addon could not be loaded (${String(lastError)}). ` +
      "Build it with `npm run build:native -w @cxr/backend-aten` (needs Debian's libtorch-dev).",
  );
}

export const native: Native = load();
