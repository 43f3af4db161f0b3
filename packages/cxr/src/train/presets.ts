// Named recipes: the seed project's experiments, in its order, and cxr's own recipe.
import type { RecipeInput } from './recipe';

export interface NamedRecipe {
  title: string;
  recipe: RecipeInput;
}

export const RECIPES: Record<string, NamedRecipe> = {
  'seed1-baseline': {
    title: '1. Baseline CNN (deadskull7) + RMSprop',
    recipe: { arch: 'deadskull7', optimizer: 'rmsprop', lr: 1e-4, schedule: 'constant', epochs: 10, batchSize: 32, balance: 'none', augment: 'none' },
  },
  'seed2-balanced': {
    title: '2. Baseline CNN + class-balanced training set',
    recipe: { arch: 'deadskull7', optimizer: 'rmsprop', lr: 1e-4, schedule: 'constant', epochs: 10, batchSize: 32, balance: 'undersample', augment: 'none' },
  },
  'seed3-madz2000': {
    title: '3. madz2000 CNN with its data augmentation',
    recipe: { arch: 'madz2000', optimizer: 'rmsprop', lr: 1e-3, schedule: 'plateau', epochs: 12, batchSize: 32, balance: 'none', augment: 'madz2000' },
  },
  'seed4-baseline-augment': {
    title: '4. Baseline CNN + data augmentation',
    recipe: { arch: 'deadskull7', optimizer: 'rmsprop', lr: 1e-4, schedule: 'constant', epochs: 10, batchSize: 32, balance: 'none', augment: 'light' },
  },
  cxr: {
    title: '5. cxr: residual CNN, strong augmentation, label smoothing, cosine LR, calibrated, TTA',
    recipe: {
      arch: 'cxrnet', inputSize: 192, optimizer: 'adam', lr: 2e-3, schedule: 'cosine', warmupEpochs: 0.5, epochs: 12, batchSize: 32,
      balance: 'class-weights', augment: 'strong', labelSmoothing: 0.05, tta: ['identity', 'zoom-in', 'zoom-out'],
    },
  },
};

export const DEFAULT_RECIPE = 'cxr';
