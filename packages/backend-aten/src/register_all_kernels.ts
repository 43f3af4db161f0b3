// The one list of native kernels. Every other kernel the cpu backend has is registered as a
// fallback that runs the cpu kernel on this backend's data.
import { KernelConfig, getKernelsForBackend, registerKernel } from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { BACKEND_NAME, AtenBackend } from './backend';
import { nativeKernel } from './kernels/kernel';
import { kernels as elementwise } from './kernels/elementwise';
import { kernels as matmul } from './kernels/matmul';
import { kernels as reduce } from './kernels/reduce';
import { kernels as norm } from './kernels/norm';
import { registerGradientOverrides } from './gradients';
import { kernels as layout } from './kernels/layout';
import { kernels as image } from './kernels/image';
import { kernels as conv } from './kernels/conv';
import { kernels as pool } from './kernels/pool';
import { kernels as grad } from './kernels/grad';

export const NATIVE_KERNELS: KernelConfig[] = [
  ...elementwise,
  ...matmul,
  ...reduce,
  ...norm,
  ...layout,
  ...image,
  ...conv,
  ...pool,
  ...grad,
];

export function registerAllKernels(): void {
  const native = new Set<string>();
  for (const k of NATIVE_KERNELS) {
    registerKernel(k);
    native.add(k.kernelName);
  }
  for (const k of getKernelsForBackend('cpu')) {
    if (!native.has(k.kernelName)) {
      registerKernel(nativeKernel(k.kernelName, () => null));
    }
  }
  registerGradientOverrides();
}

export { AtenBackend, BACKEND_NAME };
