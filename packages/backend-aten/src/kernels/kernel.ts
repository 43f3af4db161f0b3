// Helpers shared by the kernel files. A native kernel body returns null for inputs it does not
// handle (e.g. an unusual dtype); the cpu kernel of the same name then runs instead.
import { DataType, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { AtenBackend, BACKEND_NAME, KernelArgs } from '../backend';
import type { NativeDType } from '../native';

export type NativeBody = (backend: AtenBackend, args: KernelArgs) => TensorInfo | TensorInfo[] | null;

export function nativeKernel(kernelName: string, body: NativeBody): KernelConfig {
  const kernelFunc = ((args: KernelArgs) => {
    const backend = args.backend as AtenBackend;
    return body(backend, args) ?? backend.fallback(kernelName, args);
  }) as unknown as KernelFunc;
  return { kernelName, backendName: BACKEND_NAME, kernelFunc };
}

/** Narrows dtype to the allowed ones, so that it can go to the native ops typed with them. */
export function isOneOf<T extends DataType>(dtype: DataType, allowed: readonly T[]): dtype is T {
  return (allowed as readonly DataType[]).includes(dtype);
}

export const FLOAT: readonly 'float32'[] = ['float32'];
export const NUMERIC: readonly ('float32' | 'int32')[] = ['float32', 'int32'];
/** Every dtype the addon stores (no string or complex data). */
export const NATIVE_DTYPES: readonly NativeDType[] = ['float32', 'int32', 'bool'];
