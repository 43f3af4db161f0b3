// Labelled scores for report and evaluation tests: `nPos` positives first, each score the logistic of a class
// offset (±`separation`) plus seeded noise, under file names of the class folders.
import { seededRandom } from '../src/eval';

export function syntheticScores(n: number, nPos: number, seed: number, separation = 1.5) {
  const rand = seededRandom(seed);
  const labels: number[] = [];
  const probs: number[] = [];
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const y = i < nPos ? 1 : 0;
    const z = (y ? separation : -separation) + 2 * (rand() + rand() - 1);
    labels.push(y);
    probs.push(1 / (1 + Math.exp(-z)));
    files.push(`${y ? 'PNEUMONIA' : 'NORMAL'}/img${i}.jpeg`);
  }
  return { files, labels, probs };
}
