// Unary and binary element-wise kernels, activations and their gradients.
import { DataType, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { BinaryOp, UnaryOp, native } from '../native';
import { FLOAT, NATIVE_DTYPES, NUMERIC, isOneOf, nativeKernel } from './kernel';

/** [kernel name (the native op's too), dtypes handled natively, output dtype (default: input's)] */
type Spec<Op extends string> = [Op, readonly DataType[], DataType?];

const UNARY: Spec<UnaryOp>[] = [
  ['Abs', NUMERIC],
  ['Acos', FLOAT],
  ['Acosh', FLOAT],
  ['Asin', FLOAT],
  ['Asinh', FLOAT],
  ['Atan', FLOAT],
  ['Atanh', FLOAT],
  ['Ceil', FLOAT],
  ['Cos', FLOAT],
  ['Cosh', FLOAT],
  ['Elu', FLOAT],
  ['Erf', FLOAT],
  ['Exp', FLOAT],
  ['Expm1', FLOAT],
  ['Floor', FLOAT],
  ['IsFinite', FLOAT, 'bool'],
  ['IsInf', FLOAT, 'bool'],
  ['IsNan', FLOAT, 'bool'],
  ['Log', FLOAT],
  ['Log1p', FLOAT],
  ['LogicalNot', ['bool']],
  ['Neg', NUMERIC],
  ['Reciprocal', FLOAT],
  ['Relu', FLOAT],
  ['Relu6', FLOAT],
  ['Round', FLOAT],
  ['Rsqrt', FLOAT],
  ['Selu', FLOAT],
  ['Sigmoid', FLOAT],
  ['Sign', FLOAT],
  ['Sin', FLOAT],
  ['Sinh', FLOAT],
  ['Softplus', FLOAT],
  ['Sqrt', FLOAT],
  ['Square', NUMERIC],
  ['Tan', FLOAT],
  ['Tanh', FLOAT],
];

// TF.js's FloorDiv returns int32 even for float inputs; output() converts the float quotient.
const BINARY: Spec<BinaryOp>[] = [
  ['Add', NUMERIC],
  ['Sub', NUMERIC],
  ['Multiply', NUMERIC],
  ['RealDiv', FLOAT],
  ['FloorDiv', FLOAT, 'int32'],
  ['Maximum', NUMERIC],
  ['Minimum', NUMERIC],
  ['Pow', FLOAT],
  ['SquaredDifference', FLOAT],
  ['Mod', FLOAT],
  ['Atan2', FLOAT],
  ['Equal', NUMERIC, 'bool'],
  ['NotEqual', NUMERIC, 'bool'],
  ['Greater', NUMERIC, 'bool'],
  ['GreaterEqual', NUMERIC, 'bool'],
  ['Less', NUMERIC, 'bool'],
  ['LessEqual', NUMERIC, 'bool'],
  ['LogicalAnd', ['bool'], 'bool'],
  ['LogicalOr', ['bool'], 'bool'],
  ['LogicalXor', ['bool'], 'bool'],
];

const unary = UNARY.map(([name, dtypes, out]) =>
  nativeKernel(name, (b, { inputs }) => {
    const x = inputs.x as TensorInfo;
    if (!isOneOf(x.dtype, dtypes)) return null;
    return b.output(native.unary(name, b.handle(x)), out ?? x.dtype);
  }),
);

const binary = BINARY.map(([name, dtypes, out]) =>
  nativeKernel(name, (b, { inputs }) => {
    const a = inputs.a as TensorInfo;
    const bb = inputs.b as TensorInfo;
    if (a.dtype !== bb.dtype || !isOneOf(a.dtype, dtypes)) return null;
    return b.output(native.binary(name, b.handle(a), b.handle(bb)), out ?? a.dtype);
  }),
);

const others: KernelConfig[] = [
  nativeKernel('Step', (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    if (!isOneOf(x.dtype, FLOAT)) return null;
    return b.output(native.step(b.handle(x), (attrs?.alpha as number) ?? 0), x.dtype);
  }),
  nativeKernel('LeakyRelu', (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    if (!isOneOf(x.dtype, FLOAT)) return null;
    return b.output(native.leakyRelu(b.handle(x), attrs!.alpha as number), x.dtype);
  }),
  nativeKernel('Prelu', (b, { inputs }) => {
    const { x, alpha } = inputs as { x: TensorInfo; alpha: TensorInfo };
    if (!isOneOf(x.dtype, FLOAT) || alpha.dtype !== x.dtype) return null;
    return b.output(native.prelu(b.handle(x), b.handle(alpha)), x.dtype);
  }),
  nativeKernel('ClipByValue', (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    if (!isOneOf(x.dtype, FLOAT)) return null;
    return b.output(native.clip(b.handle(x), attrs!.clipValueMin as number, attrs!.clipValueMax as number), x.dtype);
  }),
  nativeKernel('Select', (b, { inputs }) => {
    const { condition, t, e } = inputs as { condition: TensorInfo; t: TensorInfo; e: TensorInfo };
    if (!b.nativeable(condition, t, e) || t.dtype !== e.dtype) return null;
    return b.output(native.select(b.handle(condition), b.handle(t), b.handle(e)), t.dtype);
  }),
  nativeKernel('AddN', (b, { inputs }) => {
    const ts = inputs as unknown as TensorInfo[];
    if (!ts.every((t) => isOneOf(t.dtype, NUMERIC) && t.dtype === ts[0].dtype)) return null;
    return b.output(native.addN(ts.map((t) => b.handle(t))), ts[0].dtype);
  }),
  nativeKernel('EluGrad', (b, { inputs }) => {
    const { dy, y } = inputs as { dy: TensorInfo; y: TensorInfo };
    if (!isOneOf(dy.dtype, FLOAT)) return null;
    return b.output(native.eluGrad(b.handle(dy), b.handle(y)), dy.dtype);
  }),
  nativeKernel('Cast', (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    const dtype = attrs!.dtype as DataType;
    if (!b.nativeable(x) || !isOneOf(dtype, NATIVE_DTYPES)) return null;
    return b.output(native.cast(b.handle(x), dtype), dtype, x.shape);
  }),
];

export const kernels: KernelConfig[] = [...unary, ...binary, ...others];
