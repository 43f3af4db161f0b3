// Reductions (Sum, Mean, Max, Min, Prod, All, Any), ArgMax/ArgMin, Softmax, Cumsum/Cumprod.
import { DataType, KernelConfig, TensorInfo, util } from '@tensorflow/tfjs-core';
import { ensureGradientOverrides } from '../gradients';
import { ReduceOp, native } from '../native';
import { FLOAT, NUMERIC, isOneOf, nativeKernel } from './kernel';

/** [kernel, native op, name of the axis attribute, dtypes handled, output dtype] */
type Spec = [string, ReduceOp, string, readonly DataType[], (x: DataType) => DataType];

const ANY: readonly DataType[] = ['float32', 'int32', 'bool'];
const same = (d: DataType) => d;
// TF.js's upcastType(d, 'int32'): integer and bool sums and products are int32.
const upcast = (d: DataType): DataType => (d === 'float32' ? d : 'int32');

const REDUCTIONS: Spec[] = [
  ['Sum', 'sum', 'axis', ANY, upcast],
  ['Mean', 'mean', 'axis', ANY, () => 'float32'],
  ['Max', 'max', 'reductionIndices', NUMERIC, same],
  ['Min', 'min', 'axis', NUMERIC, same],
  ['Prod', 'prod', 'axis', ANY, upcast],
  ['All', 'all', 'axis', ['bool'], same],
  ['Any', 'any', 'axis', ['bool'], same],
];

const reductions = REDUCTIONS.map(([name, op, axisAttr, dtypes, outDtype]) =>
  nativeKernel(name, (b, { inputs, attrs }) => {
    // Sum and Mean gradients must be ours by the time the engine records this kernel.
    if (name === 'Sum' || name === 'Mean') ensureGradientOverrides();
    const x = inputs.x as TensorInfo;
    if (!isOneOf(x.dtype, dtypes)) return null;
    const axes = util.parseAxisParam(attrs![axisAttr] as number | number[], x.shape);
    // Empty reductions: the cpu kernels' results (NaN, 0, garbage) are not worth reproducing.
    if (axes.some((a) => x.shape[a] === 0)) return null;
    return b.output(native.reduce(op, b.handle(x), axes, !!attrs!.keepDims), outDtype(x.dtype));
  }),
);

const argReductions = (
  [
    ['ArgMax', true],
    ['ArgMin', false],
  ] as const
).map(([name, isMax]) =>
  nativeKernel(name, (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    if (!isOneOf(x.dtype, NUMERIC) || x.shape.length === 0) return null;
    const axis = util.parseAxisParam(attrs!.axis as number | number[], x.shape)[0];
    if (x.shape[axis] === 0) return null;
    return b.output(native.argReduce(b.handle(x), axis, isMax), 'int32');
  }),
);

const cumulative = (
  [
    ['Cumsum', 'cumsum'],
    ['Cumprod', 'cumprod'],
  ] as const
).map(([name, op]) =>
  nativeKernel(name, (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    const axis = attrs!.axis as number;
    // Negative axes go to the cpu kernel, which reads them its own way.
    if (!isOneOf(x.dtype, ANY) || !(axis >= 0 && axis < x.shape.length) || x.shape[axis] === 0) {
      return null;
    }
    const h = native.cumulative(op, b.handle(x), axis, !!attrs!.exclusive, !!attrs!.reverse);
    return b.output(h, upcast(x.dtype));
  }),
);

export const kernels: KernelConfig[] = [
  ...reductions,
  ...argReductions,
  ...cumulative,
  nativeKernel('Softmax', (b, { inputs, attrs }) => {
    const logits = inputs.logits as TensorInfo;
    const rank = logits.shape.length;
    const dim = attrs!.dim as number;
    if (!isOneOf(logits.dtype, FLOAT) || rank === 0 || (dim !== -1 && dim !== rank - 1)) return null;
    return b.output(native.softmax(b.handle(logits)), 'float32');
  }),
];
