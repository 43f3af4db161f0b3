// Layout kernels: views (no native call), slicing, joining, padding, gathering and constants.
// Attributes are validated and canonicalised with tfjs-core's own helpers, the same ones the cpu
// kernels use, so errors and edge cases (negative axes, masks, -1 sizes) behave identically.
import { DataType, KernelConfig, Tensor, TensorInfo, backend_util, slice_util, util } from '@tensorflow/tfjs-core';
import { AtenBackend } from '../backend';
import { native } from '../native';
import { FLOAT, NATIVE_DTYPES, NUMERIC, isOneOf, nativeKernel } from './kernel';

/** The same data seen with another shape: shares the dataId, no copy. */
function view(b: AtenBackend, x: TensorInfo, shape: number[]): TensorInfo {
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

function reshapeTo(b: AtenBackend, x: TensorInfo, requested: number[]): TensorInfo {
  const size = util.sizeFromShape(x.shape);
  const shape = util.inferFromImplicitShape(requested, size);
  util.assert(
    size === util.sizeFromShape(shape),
    () =>
      `The new shape (${shape}) has ` +
      `${util.sizeFromShape(shape)} elements and the old shape (${x.shape}) has ${size} elements. ` +
      'The new shape and old shape must have the same number of elements.',
  );
  return view(b, x, shape);
}

function flatPaddings(paddings: Array<[number, number]>): number[] {
  return paddings.flat();
}

function paddedShape(x: TensorInfo, paddings: Array<[number, number]>): number[] {
  return paddings.map(([before, after], i) => before + x.shape[i] + after);
}

function sliceNative(b: AtenBackend, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  return b.output(native.slice(b.handle(x), begin, size), x.dtype, size);
}

export const kernels: KernelConfig[] = [
  nativeKernel('Reshape', (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    return b.nativeable(x) ? reshapeTo(b, x, attrs!.shape as number[]) : null;
  }),
  nativeKernel('Identity', (b, { inputs }) => {
    const x = inputs.x as TensorInfo;
    return b.nativeable(x) ? view(b, x, x.shape) : null;
  }),
  nativeKernel('ExpandDims', (b, { inputs, attrs }) => {
    const x = inputs.input as TensorInfo;
    if (!b.nativeable(x)) return null;
    const rank = x.shape.length;
    let dim = attrs!.dim as number;
    if (dim < 0) {
      util.assert(-(rank + 1) <= dim, () => `Axis must be in the interval [${-(rank + 1)}, ${rank}]`);
      dim += rank + 1;
    }
    const shape = x.shape.slice();
    shape.splice(dim, 0, 1);
    return view(b, x, shape);
  }),
  nativeKernel('Transpose', (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    const perm = attrs!.perm as number[];
    if (!b.nativeable(x)) return null;
    return b.output(
      native.transpose(b.handle(x), perm),
      x.dtype,
      perm.map((p) => x.shape[p]),
    );
  }),
  nativeKernel('Slice', (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    if (!b.nativeable(x)) return null;
    const [begin, size] = slice_util.parseSliceParams(x, attrs!.begin as number[], attrs!.size as number[]);
    slice_util.assertParamsValid(x, begin, size);
    return sliceNative(b, x, begin, size);
  }),
  nativeKernel('StridedSlice', (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    if (!b.nativeable(x)) return null;
    const a = attrs as unknown as {
      begin: number[];
      end: number[];
      strides: number[];
      beginMask: number;
      endMask: number;
      ellipsisMask: number;
      newAxisMask: number;
      shrinkAxisMask: number;
    };
    const info = slice_util.sliceInfo(
      x.shape,
      a.begin,
      a.end,
      a.strides,
      a.beginMask,
      a.endMask,
      a.ellipsisMask,
      a.newAxisMask,
      a.shrinkAxisMask,
    );
    if (info.isIdentity) return reshapeTo(b, x, info.finalShape);
    // Per input dimension (shrunk ones have size 1); finalShape then adds and drops axes.
    const sizes = slice_util.computeOutShape(info.begin, info.end, info.strides).map((s) => Math.max(0, s));
    if (sizes.length !== x.shape.length || util.sizeFromShape(sizes) !== util.sizeFromShape(info.finalShape))
      return null;
    return b.output(
      native.stridedSlice(b.handle(x), info.begin, info.strides, sizes, info.finalShape),
      x.dtype,
      info.finalShape,
    );
  }),
  nativeKernel('Concat', (b, { inputs, attrs }) => {
    const ts = inputs as unknown as TensorInfo[];
    const dtype = ts[0].dtype;
    if (!isOneOf(dtype, NATIVE_DTYPES) || !ts.every((t) => t.dtype === dtype)) return null;
    const axis = util.parseAxisParam(attrs!.axis as number, ts[0].shape)[0];
    const shapes = ts.map((t) => t.shape);
    backend_util.assertParamsConsistent(shapes, axis);
    const shape = backend_util.computeOutShape(shapes, axis);
    const nonEmpty = ts.filter((t) => util.sizeFromShape(t.shape) > 0);
    if (util.sizeFromShape(shape) === 0 || nonEmpty.length === 0) {
      return b.output(native.fill(shape, 0, dtype), dtype, shape);
    }
    if (nonEmpty.length === 1) return view(b, nonEmpty[0], shape);
    return b.output(
      native.concat(
        nonEmpty.map((t) => b.handle(t)),
        axis,
      ),
      ts[0].dtype,
      shape,
    );
  }),
  nativeKernel('Pack', (b, { inputs, attrs }) => {
    const ts = inputs as unknown as TensorInfo[];
    if (!ts.every((t) => isOneOf(t.dtype, NATIVE_DTYPES))) return null;
    ts.forEach((t) => {
      util.assertShapesMatch(ts[0].shape, t.shape, 'All tensors passed to stack must have matching shapes');
      util.assert(ts[0].dtype === t.dtype, () => 'All tensors passed to stack must have matching dtypes');
    });
    const rank = ts[0].shape.length;
    const axis = (attrs!.axis as number) < 0 ? (attrs!.axis as number) + rank + 1 : (attrs!.axis as number);
    const shape = ts[0].shape.slice();
    shape.splice(axis, 0, ts.length);
    if (ts.length === 1) return view(b, ts[0], shape);
    return b.output(
      native.stack(
        ts.map((t) => b.handle(t)),
        axis,
      ),
      ts[0].dtype,
      shape,
    );
  }),
  nativeKernel('Unpack', (b, { inputs, attrs }) => {
    const x = inputs.value as TensorInfo;
    if (!b.nativeable(x)) return null;
    const axis = (attrs!.axis as number) < 0 ? (attrs!.axis as number) + x.shape.length : (attrs!.axis as number);
    const shape = x.shape.filter((_, i) => i !== axis);
    return native.unstack(b.handle(x), axis).map((h) => b.output(h, x.dtype, shape));
  }),
  nativeKernel('SplitV', (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    if (!b.nativeable(x)) return null;
    const axis = util.parseAxisParam(attrs!.axis as number, x.shape)[0];
    const sizes = backend_util.prepareSplitSize(x, attrs!.numOrSizeSplits as number[] | number, axis);
    return native.split(b.handle(x), sizes, axis).map((h, i) => {
      const shape = x.shape.slice();
      shape[axis] = sizes[i];
      return b.output(h, x.dtype, shape);
    });
  }),
  nativeKernel('Tile', (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    const reps = attrs!.reps as number[];
    if (!b.nativeable(x) || reps.length !== x.shape.length) return null;
    return b.output(
      native.tile(b.handle(x), reps),
      x.dtype,
      x.shape.map((s, i) => s * reps[i]),
    );
  }),
  nativeKernel('PadV2', (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    const paddings = attrs!.paddings as Array<[number, number]>;
    if (!b.nativeable(x)) return null;
    const value = attrs!.constantValue as number;
    return b.output(native.pad(b.handle(x), flatPaddings(paddings), value), x.dtype, paddedShape(x, paddings));
  }),
  nativeKernel('MirrorPad', (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    const paddings = attrs!.paddings as Array<[number, number]>;
    if (!b.nativeable(x)) return null;
    const offset = attrs!.mode === 'reflect' ? 0 : 1;
    return b.output(native.mirrorPad(b.handle(x), flatPaddings(paddings), offset), x.dtype, paddedShape(x, paddings));
  }),
  nativeKernel('GatherV2', (b, { inputs, attrs }) => {
    const { x, indices } = inputs as { x: TensorInfo; indices: TensorInfo };
    if (!b.nativeable(x) || indices.dtype !== 'int32' || ((attrs!.batchDims as number) ?? 0) !== 0) return null;
    const axis = util.parseAxisParam(attrs!.axis as number, x.shape)[0];
    const shape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
    try {
      return b.output(native.gather(b.handle(x), b.handle(indices), axis), x.dtype, shape);
    } catch {
      return null; // an index out of range: the cpu kernel throws TF.js's own error for it
    }
  }),
  nativeKernel('GatherNd', (b, { inputs }) => {
    const { params, indices } = inputs as { params: TensorInfo; indices: TensorInfo };
    if (!b.nativeable(params) || indices.dtype !== 'int32') return null;
    const [shape, numSlices, sliceSize, strides] = backend_util.prepareAndValidate(params, indices);
    if (numSlices === 0) return b.output(native.fill(shape, 0, params.dtype), params.dtype, shape);
    return b.output(
      native.gatherNd(b.handle(params), b.handle(indices), strides, sliceSize, shape),
      params.dtype,
      shape,
    );
  }),
  nativeKernel('Reverse', (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    if (!b.nativeable(x)) return null;
    if (x.shape.length === 0) return view(b, x, x.shape);
    const dims = util.parseAxisParam(attrs!.dims as number[], x.shape);
    return b.output(native.reverse(b.handle(x), dims), x.dtype, x.shape);
  }),
  nativeKernel('OneHot', (b, { inputs, attrs }) => {
    const indices = inputs.indices as TensorInfo;
    const { depth, onValue, offValue, dtype } = attrs as {
      depth: number;
      onValue: number;
      offValue: number;
      dtype: DataType;
    };
    if (indices.dtype !== 'int32' || !isOneOf(dtype, NATIVE_DTYPES)) return null;
    return b.output(native.oneHot(b.handle(indices), depth, onValue, offValue, dtype), dtype, [
      ...indices.shape,
      depth,
    ]);
  }),
  nativeKernel('Fill', (b, { attrs }) => {
    const { shape, value } = attrs as { shape: number[]; value: number | string };
    const dtype = (attrs!.dtype as DataType) || util.inferDtype(value);
    if (typeof value === 'string' || !isOneOf(dtype, NATIVE_DTYPES)) return null;
    return b.output(native.fill(shape, value, dtype), dtype, shape);
  }),
  ...(['ZerosLike', 'OnesLike'] as const).map((name) =>
    nativeKernel(name, (b, { inputs }) => {
      const x = inputs.x as TensorInfo;
      if (!b.nativeable(x)) return null;
      return b.output(native.fill(x.shape, name === 'OnesLike' ? 1 : 0, x.dtype), x.dtype, x.shape);
    }),
  ),
  nativeKernel('Range', (b, { attrs }) => {
    const { start, stop, dtype } = attrs as { start: number; stop: number; dtype: DataType };
    let step = attrs!.step as number;
    if (!isOneOf(dtype, NUMERIC)) return null;
    // tfjs-backend-cpu's rangeImpl, including its quirks (a step of 1 means "towards stop").
    const empty = start === stop || (start < stop && step < 0) || (stop < start && step > 1);
    const n = empty ? 0 : Math.abs(Math.ceil((stop - start) / step));
    if (!Number.isFinite(n)) return null;
    if (stop < start && step === 1) step = -1;
    return b.output(native.range(start, step, n, dtype), dtype, [n]);
  }),
  nativeKernel('Einsum', (b, { inputs, attrs }) => {
    const ts = inputs as unknown as TensorInfo[];
    if (!ts.every((t) => isOneOf(t.dtype, FLOAT))) return null;
    // ATen accepts more (ellipses, traces, any operand count); keep TF.js's limits and errors.
    const { allDims, idDims } = backend_util.decodeEinsumEquation(attrs!.equation as string, ts.length);
    backend_util.checkEinsumDimSizes(allDims.length, idDims, ts as unknown as Tensor[]);
    return b.output(
      native.einsum(
        attrs!.equation as string,
        ts.map((t) => b.handle(t)),
      ),
      'float32',
    );
  }),
];
