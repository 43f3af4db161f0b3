// Selects the ATen backend for everything cxr runs. Imported by every command that touches tensors.
import * as tf from '@tensorflow/tfjs-core';
// tfjs-layers registers its layer classes, which useFusedBatchNormTraining patches. Required, not imported: tsc
// copies a bare `import '...'` into engine.d.ts, which brought tfjs-layers' declarations (15 errors under `strict`
// without skipLibCheck) into every program using @cxr/app/predict.
require('@tensorflow/tfjs-layers');
import * as os from 'node:os';
import * as aten from '@cxr/backend-aten';

let ready: Promise<void> | null = null;

/**
 * `threads`: the engine's thread count (--threads); default all cores. More threads than cores only contend
 * (a 20-film run took 1.3 s on one thread, 10 s on 64, and made no progress in a minute on 1000 of 2 cores):
 * said on stderr, not refused, as a machine's share of cores may be set elsewhere.
 */
export async function initEngine(threads?: number): Promise<void> {
  // async: a thread count the engine refuses (-1, 'x') rejects the promise; thrown as the call ran, it passed a
  // program's `.catch` and ended the process.
  if (threads) {
    const cores = os.availableParallelism();
    if (threads > cores) {
      process.stderr.write(
        `cxr: note: --threads ${threads} is more than this machine's ${cores} cores: the threads contend and the ` +
          `work is slower, not faster (leave --threads out to use all ${cores})\n`,
      );
    }
    aten.setNumThreads(threads);
  }
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
