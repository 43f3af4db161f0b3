// The in-memory form of pretrained weights, whatever file they were read from (its own module so
// that the readers and weights.ts, which dispatches to them, do not import each other).
export interface WeightArray {
  shape: number[];
  data: Float32Array;
}

/** layer name -> short weight name ('kernel', 'depthwise_kernel', 'gamma', 'moving_mean', ...) -> values. */
export type WeightMap = Map<string, Map<string, WeightArray>>;
