// The GAN: class-conditional DCGAN for synthetic training X-rays (see docs/gan.md).
export { GanConfig, QUICK, CLASS_NAMES, classIndex } from './config';
export { buildGenerator, buildDiscriminator } from './models';
export { trainGan, sampleGrid, GRID_COLS, GRID_ROWS_PER_CLASS } from './train';
export type { GanTrainOptions, GanTrainResult } from './train';
export { loadGenerator, readGanMeta, generate, GanMeta } from './generator_io';
export { sampleToFiles } from './sample';
export { memorisationCheck } from './memorisation';
export type { MemorisationSummary } from './memorisation';
export { withGanImages, ganCounts, syntheticSet, isSynthetic } from './mix';
export type { GanImages } from './mix';
export { gridDims } from './grid';
