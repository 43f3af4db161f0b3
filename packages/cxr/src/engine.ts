// Selects the ATen backend for everything cxr runs. Imported by every command that touches tensors.
import * as tf from '@tensorflow/tfjs-core';
import * as aten from '@cxr/backend-aten';

let ready: Promise<void> | null = null;

export function initEngine(threads?: number): Promise<void> {
  if (threads) aten.setNumThreads(threads);
  ready ??= (async () => {
    tf.enableProdMode();
    if (!(await tf.setBackend('aten'))) throw new Error('the aten backend failed to initialise');
    await tf.ready();
  })();
  return ready;
}
