// A classifier's run folder as `cxr train` leaves it when stopped, for the tests of what each command says of it.
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * A run folder as `cxr train` leaves it when stopped: its recipe and, after `epoch` epochs (null: before the
 * first), the checkpoint, the log and the record of the data it started on.
 */
export function interruptedRun(dir: string, dataRoot: string, epoch: number | null): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'recipe.json'), JSON.stringify({ arch: 'reference', inputSize: 32, epochs: 3 }));
  if (epoch === null) return dir;
  const last = path.join(dir, 'checkpoints', 'last');
  fs.mkdirSync(last, { recursive: true });
  fs.writeFileSync(path.join(dir, 'log.jsonl'), '{"epoch":1,"loss":0.6,"val_auc":0.7}\n');
  const state = { epoch, step: 8 * epoch, bestAuc: 0.7, bestEpoch: epoch, schedule: {}, elapsedSeconds: 12 };
  fs.writeFileSync(path.join(last, 'state.json'), JSON.stringify(state));
  fs.writeFileSync(path.join(last, 'model.json'), '{}');
  const data = { root: dataRoot, fingerprint: 'ab12', train: 30, validation: 10 };
  fs.writeFileSync(path.join(dir, 'checkpoints', 'data.json'), JSON.stringify(data));
  return dir;
}
