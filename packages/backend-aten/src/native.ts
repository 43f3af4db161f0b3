// Typed view of the N-API addon (native/*.cc). Every function may throw a JS Error with ATen's message.
import * as path from 'node:path';

/** Opaque handle to an ATen tensor owned by the addon. */
export type Handle = { readonly __aten: unique symbol };
export type NativeDType = 'float32' | 'int32' | 'bool';

export interface NativeMemory {
  bytesInUse: number;
  bytesCached: number;
  numAllocations: number;
  uploads: number;
  downloads: number;
}

export interface Native {
  upload(values: Float32Array | Int32Array | Uint8Array, shape: number[]): Handle;
  download(h: Handle): Float32Array | Int32Array | Uint8Array;
  scalar(value: number, dtype: NativeDType): Handle;
  free(h: Handle): void;
  shape(h: Handle): number[];
  dtype(h: Handle): NativeDType | 'other';
  reshape(h: Handle, shape: number[]): Handle;
  cast(h: Handle, dtype: NativeDType): Handle;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  memory(): NativeMemory;
  emptyCache(): void;
  // Anything else is an op exported by one of the native/ops_*.cc families.
  // biome-ignore lint/suspicious/noExplicitAny: each native op has its own signature; wrappers in kernels/ type them.
  [op: string]: (...args: any[]) => any;
}

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
      'Build it with `npm run build:native -w @cxr/backend-aten` (needs Debian\'s libtorch-dev).');
}

export const native: Native = load();
