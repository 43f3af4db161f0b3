// Importing this module registers the TF.js backend 'aten' with a priority above 'cpu'.
import * as os from 'node:os';
import { registerBackend } from '@tensorflow/tfjs-core';
import { AtenBackend, BACKEND_NAME } from './backend';
import { native } from './native';
import { registerAllKernels, NATIVE_KERNELS } from './register_all_kernels';

export const PRIORITY = 3;

/** Sets the number of threads ATen uses for intra-op parallelism. */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`aten: thread count must be a positive integer, got ${n}`);
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Native memory and transfer counters (uploads/downloads count JS<->ATen copies). */
export function nativeMemory() {
  return native.memory();
}

const envThreads = Number(process.env.ATEN_NUM_THREADS);
setNumThreads(Number.isInteger(envThreads) && envThreads > 0 ? envThreads : os.availableParallelism());

registerAllKernels();
registerBackend(BACKEND_NAME, () => new AtenBackend(), PRIORITY);

export { AtenBackend, BACKEND_NAME, NATIVE_KERNELS };
export { useFusedBatchNormTraining, useNativeRelu6 } from './layers';
