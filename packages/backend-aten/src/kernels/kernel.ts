// Helpers shared by the kernel files. A native kernel body returns null for inputs it does not
// handle (e.g. an unusual dtype); the cpu kernel of the same name then runs instead.
import { DataType, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { AtenBackend, BACKEND_NAME, KernelArgs } from '../backend';

export type NativeBody = (backend: AtenBackend, args: KernelArgs) => TensorInfo | TensorInfo[] | null;

export function nativeKernel(kernelName: string, body: NativeBody): KernelConfig {
  const kernelFunc = ((args: KernelArgs) => {
    const backend = args.backend as AtenBackend;
    return body(backend, args) ?? backend.fallback(kernelName, args);
  }) as unknown as KernelFunc;
  return { kernelName, backendName: BACKEND_NAME, kernelFunc };
}

export function isOneOf(dtype: DataType, allowed: readonly DataType[]): boolean {
  return allowed.includes(dtype);
}

export const FLOAT: readonly DataType[] = ['float32'];
export const NUMERIC: readonly DataType[] = ['float32', 'int32'];
