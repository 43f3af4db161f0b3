// The addon's functions as native/*.cc reads their arguments (Napi::CallbackInfo), one interface
// per source file. Shapes, axes and pads are plain number arrays; tensors cross as handles.
// Spatial ops take TF.js's channels-last layout; `pads` is (before, after) per spatial dim.
// Every function may throw a JS Error carrying ATen's message ("aten.<op>: ...").

/** Opaque handle to an ATen tensor owned by the addon. */
export type Handle = { readonly __aten: unique symbol };
export type NativeDType = 'float32' | 'int32' | 'bool';
/** The typed arrays upload() takes and download() gives: one per NativeDType (bool as bytes). */
export type NativeValues = Float32Array | Int32Array | Uint8Array;
type Shape = readonly number[];

export interface NativeMemory {
  bytesInUse: number;
  bytesCached: number;
  numAllocations: number;
  uploads: number;
  downloads: number;
}

/** tensor.cc: tensor lifetime, the data crossings, and the runtime's settings. */
export interface NativeTensorOps {
  /** Copies the values into a new tensor; their count must match the shape. */
  upload(values: NativeValues, shape: Shape): Handle;
  download(h: Handle): NativeValues;
  scalar(value: number, dtype: NativeDType): Handle;
  /** Releases the storage now; the handle must not be used again. */
  free(h: Handle): void;
  shape(h: Handle): number[];
  dtype(h: Handle): NativeDType | 'other';
  /** A view sharing the storage. */
  reshape(h: Handle, shape: Shape): Handle;
  /** TF.js's casts: x != 0 for bool, float -> int32 truncating and wrapping as Int32Array does. */
  cast(h: Handle, dtype: NativeDType): Handle;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  memory(): NativeMemory;
  emptyCache(): void;
}

/** The ops `unary` runs, by TF.js kernel name (ops_elementwise.cc's table). */
export type UnaryOp =
  | 'Abs'
  | 'Acos'
  | 'Acosh'
  | 'Asin'
  | 'Asinh'
  | 'Atan'
  | 'Atanh'
  | 'Ceil'
  | 'Cos'
  | 'Cosh'
  | 'Elu'
  | 'Erf'
  | 'Exp'
  | 'Expm1'
  | 'Floor'
  | 'IsFinite'
  | 'IsInf'
  | 'IsNan'
  | 'Log'
  | 'Log1p'
  | 'LogicalNot'
  | 'Neg'
  | 'Reciprocal'
  | 'Relu'
  | 'Relu6'
  | 'Round'
  | 'Rsqrt'
  | 'Selu'
  | 'Sigmoid'
  | 'Sign'
  | 'Sin'
  | 'Sinh'
  | 'Softplus'
  | 'Sqrt'
  | 'Square'
  | 'Tan'
  | 'Tanh';
/** The ops `binary` runs, by TF.js kernel name; both operands have the same dtype. */
export type BinaryOp =
  | 'Add'
  | 'Sub'
  | 'Multiply'
  | 'RealDiv'
  | 'FloorDiv'
  | 'Maximum'
  | 'Minimum'
  | 'Pow'
  | 'SquaredDifference'
  | 'Mod'
  | 'Atan2'
  | 'Equal'
  | 'NotEqual'
  | 'Greater'
  | 'GreaterEqual'
  | 'Less'
  | 'LessEqual'
  | 'LogicalAnd'
  | 'LogicalOr'
  | 'LogicalXor';

/** ops_elementwise.cc */
export interface NativeElementwiseOps {
  unary(op: UnaryOp, x: Handle): Handle;
  binary(op: BinaryOp, a: Handle, b: Handle): Handle;
  /** 1 where x > 0, alpha elsewhere, NaN kept. */
  step(x: Handle, alpha: number): Handle;
  leakyRelu(x: Handle, alpha: number): Handle;
  prelu(x: Handle, alpha: Handle): Handle;
  clip(x: Handle, min: number, max: number): Handle;
  /** A rank-1 condition selects whole rows of a and b. */
  select(condition: Handle, a: Handle, b: Handle): Handle;
  /** At least one tensor, all of one shape. */
  addN(xs: readonly Handle[]): Handle;
  eluGrad(dy: Handle, y: Handle): Handle;
}

/** ops_grad.cc: fused gradients. */
export interface NativeGradOps {
  reluGrad(dy: Handle, x: Handle): Handle;
  relu6Grad(dy: Handle, x: Handle): Handle;
  squareGrad(dy: Handle, x: Handle): Handle;
  /** x expanded to shape without a copy; x's rank must already match. */
  broadcastView(x: Handle, shape: Shape): Handle;
}

export type ReduceOp = 'sum' | 'mean' | 'max' | 'min' | 'prod' | 'all' | 'any';
export type CumulativeOp = 'cumsum' | 'cumprod';

/** ops_reduce.cc */
export interface NativeReduceOps {
  /** An empty axes list reduces nothing (TF.js), not everything (ATen). */
  reduce(op: ReduceOp, x: Handle, axes: Shape, keepDims: boolean): Handle;
  /** int32 indices of the first maximum (isMax) or minimum along axis; NaN wins as in TF.js. */
  argReduce(x: Handle, axis: number, isMax: boolean): Handle;
  /** Along the last axis. */
  softmax(logits: Handle): Handle;
  cumulative(op: CumulativeOp, x: Handle, axis: number, exclusive: boolean, reverse: boolean): Handle;
}

/** The activations conv and fusedMatMul apply after the bias (TF.js's fused Activation). */
export type FusedActivation = 'linear' | 'relu' | 'relu6' | 'elu' | 'sigmoid' | 'leakyrelu' | 'prelu';

/** ops_conv.cc: 2-D and 3-D, plain and depthwise (groups > 1) convolutions. */
export interface NativeConvOps {
  /** bias broadcasts to the output (a per-channel one is fused into the convolution); no activation
   * is 'linear'; 'prelu' needs preluWeights; leakyAlpha defaults to 0.2. */
  conv(
    x: Handle,
    filter: Handle,
    strides: Shape,
    dilations: Shape,
    pads: Shape,
    groups: number,
    bias?: Handle,
    activation?: FusedActivation,
    preluWeights?: Handle,
    leakyAlpha?: number,
  ): Handle;
  convBackpropInput(
    dy: Handle,
    filter: Handle,
    inputShape: Shape,
    strides: Shape,
    dilations: Shape,
    pads: Shape,
    groups: number,
  ): Handle;
  /** The filter's gradient in TF.js's layout, filterShape. */
  convBackpropFilter(
    x: Handle,
    dy: Handle,
    filterShape: Shape,
    strides: Shape,
    dilations: Shape,
    pads: Shape,
    groups: number,
  ): Handle;
}

/** ops_pool.cc: 2-D and 3-D pooling with TF.js's NaN and padding semantics. */
export interface NativePoolOps {
  maxPool(x: Handle, kernel: Shape, strides: Shape, pads: Shape, withIndices: false): Handle;
  /** With the indices for maxPoolGrad, or undefined when they are not TF.js's maximum positions. */
  maxPool(x: Handle, kernel: Shape, strides: Shape, pads: Shape, withIndices: true): [Handle, Handle | undefined];
  /** indices: from maxPool with the same geometry, or null to find the maxima again. */
  maxPoolGrad(dy: Handle, x: Handle, kernel: Shape, strides: Shape, pads: Shape, indices: Handle | null): Handle;
  /** A window entirely in the padding gives NaN, or 0 with emptyWindowIsZero (AvgPool3D). */
  avgPool(x: Handle, kernel: Shape, strides: Shape, pads: Shape, emptyWindowIsZero: boolean): Handle;
  avgPoolGrad(dy: Handle, inputShape: Shape, kernel: Shape, strides: Shape, pads: Shape): Handle;
}

/** ops_matmul.cc: a and b batched over all but their last two dims, the result shaped outShape. */
export interface NativeMatmulOps {
  batchMatMul(a: Handle, b: Handle, transposeA: boolean, transposeB: boolean, outShape: Shape): Handle;
  fusedMatMul(
    a: Handle,
    b: Handle,
    transposeA: boolean,
    transposeB: boolean,
    outShape: Shape,
    bias: Handle | null,
    activation: FusedActivation,
    preluWeights: Handle | null,
    leakyAlpha: number,
  ): Handle;
}

/** ops_norm.cc: batch normalisation, inference and training. */
export interface NativeNormOps {
  batchNorm(
    x: Handle,
    mean: Handle,
    variance: Handle,
    offset: Handle | null,
    scale: Handle | null,
    varianceEpsilon: number,
  ): Handle;
  /** [dx, dmean, dvariance, dscale, doffset]; an absent parameter's gradient is shaped like mean. */
  batchNormGrad(
    dy: Handle,
    x: Handle,
    mean: Handle,
    variance: Handle,
    scale: Handle | null,
    offset: Handle | null,
    varianceEpsilon: number,
  ): [Handle, Handle, Handle, Handle, Handle];
  /** [y, mean, variance] with the batch's moments over every axis but the last. */
  batchNormTraining(
    x: Handle,
    scale: Handle | null,
    offset: Handle | null,
    varianceEpsilon: number,
  ): [Handle, Handle, Handle];
  /** [dx, dscale, doffset], dmean and dvariance being the gradients reaching the moments' outputs. */
  batchNormTrainingGrad(
    dy: Handle,
    x: Handle,
    mean: Handle,
    variance: Handle,
    scale: Handle | null,
    varianceEpsilon: number,
    dmean: Handle | null,
    dvariance: Handle | null,
  ): [Handle, Handle, Handle];
}

/** ops_layout.cc: copies and rearrangements. */
export interface NativeLayoutOps {
  transpose(x: Handle, perm: Shape): Handle;
  slice(x: Handle, begin: Shape, size: Shape): Handle;
  /** Element k of dim d is begin[d] + k * strides[d]; finalShape adds and drops the unit axes. */
  stridedSlice(x: Handle, begin: Shape, strides: Shape, sizes: Shape, finalShape: Shape): Handle;
  concat(xs: readonly Handle[], axis: number): Handle;
  stack(xs: readonly Handle[], axis: number): Handle;
  unstack(x: Handle, axis: number): Handle[];
  split(x: Handle, sizes: Shape, axis: number): Handle[];
  tile(x: Handle, reps: Shape): Handle;
  /** paddings: [before0, after0, before1, after1, ...] */
  pad(x: Handle, paddings: Shape, value: number): Handle;
  /** offset 0 reflects (edge excluded), 1 is symmetric (edge repeated). */
  mirrorPad(x: Handle, paddings: Shape, offset: 0 | 1): Handle;
  gather(x: Handle, indices: Handle, axis: number): Handle;
  gatherNd(params: Handle, indices: Handle, strides: Shape, sliceSize: number, resultShape: Shape): Handle;
  reverse(x: Handle, axes: Shape): Handle;
  oneHot(indices: Handle, depth: number, onValue: number, offValue: number, dtype: NativeDType): Handle;
  fill(shape: Shape, value: number, dtype: NativeDType): Handle;
  /** n values from start, each the previous stored value plus step (as TF.js accumulates). */
  range(start: number, step: number, n: number, dtype: NativeDType): Handle;
  einsum(equation: string, xs: readonly Handle[]): Handle;
}

export type FillMode = 'constant' | 'reflect' | 'wrap' | 'nearest';

/** ops_image.cc: float32 NHWC images; height and width are the output's (the input's for gradients). */
export interface NativeImageOps {
  resizeBilinear(
    images: Handle,
    height: number,
    width: number,
    alignCorners: boolean,
    halfPixelCenters: boolean,
  ): Handle;
  resizeBilinearGrad(
    dy: Handle,
    height: number,
    width: number,
    alignCorners: boolean,
    halfPixelCenters: boolean,
  ): Handle;
  resizeNearest(
    images: Handle,
    height: number,
    width: number,
    alignCorners: boolean,
    halfPixelCenters: boolean,
  ): Handle;
  resizeNearestGrad(
    dy: Handle,
    height: number,
    width: number,
    alignCorners: boolean,
    halfPixelCenters: boolean,
  ): Handle;
  /** boxes float32 [n, 4] (y1, x1, y2, x2 normalised), boxInd int32 [n]. */
  cropAndResize(
    image: Handle,
    boxes: Handle,
    boxInd: Handle,
    cropHeight: number,
    cropWidth: number,
    nearest: boolean,
    extrapolationValue: number,
  ): Handle;
  /** transforms float32 [1, 8] or [batch, 8], projective, mapping output to input points. */
  transform(
    image: Handle,
    transforms: Handle,
    nearest: boolean,
    fillMode: FillMode,
    fillValue: number,
    outHeight: number,
    outWidth: number,
  ): Handle;
  /** Nearest-pixel rotation about (centerX, centerY); fill has one value per channel. */
  rotate(image: Handle, sin: number, cos: number, centerX: number, centerY: number, fill: readonly number[]): Handle;
}

/** Everything the addon exports. */
export interface Native
  extends NativeTensorOps,
    NativeElementwiseOps,
    NativeGradOps,
    NativeReduceOps,
    NativeConvOps,
    NativePoolOps,
    NativeMatmulOps,
    NativeNormOps,
    NativeLayoutOps,
    NativeImageOps {}
