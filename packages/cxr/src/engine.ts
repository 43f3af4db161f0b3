// Selects the ATen backend for everything cxr runs. Imported by every command that touches tensors.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import * as aten from '@cxr/backend-aten';

let ready: Promise<void> | null = null;

export function initEngine(threads?: number): Promise<void> {
  if (threads) aten.setNumThreads(threads);
  ready ??= (async () => {
    tf.enableProdMode();
    // Batch norm in training as one native kernel (and one for its gradient) instead of ~11 passes.
    aten.useFusedBatchNormTraining();
    // MobileNet's relu6 as one native kernel each way instead of six passes (same values).
    aten.useNativeRelu6();
    if (!(await tf.setBackend('aten'))) throw new Error('the aten backend failed to initialise');
    await tf.ready();
  })();
  return ready;
}
