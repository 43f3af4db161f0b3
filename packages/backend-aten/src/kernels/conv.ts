// Convolutions: Conv2D, depthwise, fused (bias + activation), Conv3D and all their gradients.
// Channels-last float32 only; NCHW data, other dtypes and empty tensors run the cpu kernels.
import {
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  Conv3DAttrs,
  Conv3DBackpropFilterV2Attrs,
  Conv3DBackpropInputV2Attrs,
  DepthwiseConv2dNativeBackpropFilterAttrs,
  DepthwiseConv2dNativeBackpropInputAttrs,
  FusedConv2DAttrs,
  KernelConfig,
  TensorInfo,
  backend_util,
  util,
} from '@tensorflow/tfjs-core';
import { AtenBackend } from '../backend';
import { FusedActivation, native } from '../native';
import { ensureGradientOverrides } from '../gradients';
import { nativeKernel } from './kernel';

type Info = backend_util.Conv2DInfo | backend_util.Conv3DInfo;
type Shape4 = [number, number, number, number];
type Shape5 = [number, number, number, number, number];

/** Per spatial dim: strides, dilations and (before, after) pads, `after` being what makes the
 * windows end exactly at TF.js's output size (so rounding modes need no special case). */
export interface Geometry {
  strides: number[];
  dilations: number[];
  pads: number[];
}

export function geometry(c: Info): Geometry | null {
  if (util.sizeFromShape(c.inShape) === 0 || util.sizeFromShape(c.outShape) === 0) return null;
  const c3 = c as backend_util.Conv3DInfo;
  const is3d = c3.outDepth !== undefined;
  const pick = (d: number, h: number, w: number) => (is3d ? [d, h, w] : [h, w]);
  const ins = pick(c3.inDepth, c.inHeight, c.inWidth);
  const outs = pick(c3.outDepth, c.outHeight, c.outWidth);
  const strides = pick(c3.strideDepth, c.strideHeight, c.strideWidth);
  const windows = pick(c3.effectiveFilterDepth, c.effectiveFilterHeight, c.effectiveFilterWidth);
  const before = pick(c3.padInfo?.front, c.padInfo.top, c.padInfo.left);
  if (outs.some((o) => !(o > 0))) return null;
  return {
    strides,
    dilations: pick(c3.dilationDepth, c.dilationHeight, c.dilationWidth),
    pads: before.flatMap((b, i) => [b, (outs[i] - 1) * strides[i] + windows[i] - ins[i] - b]),
  };
}

const float = (...ts: (TensorInfo | undefined)[]) => ts.every((t) => t === undefined || t.dtype === 'float32');
const channelsLast = (format?: string) => format === undefined || format === 'NHWC' || format === 'NDHWC';
const broadcastsTo = (t: TensorInfo | undefined, shape: number[]) =>
  t === undefined || util.arraysEqual(backend_util.assertAndGetBroadcastShape(t.shape, shape), shape);

function forward(
  b: AtenBackend,
  x: TensorInfo,
  filter: TensorInfo,
  info: Info,
  groups: number,
  fused?: { bias?: TensorInfo; prelu?: TensorInfo; activation: FusedActivation; leakyreluAlpha?: number },
): TensorInfo | null {
  const g = geometry(info);
  if (g === null) return null;
  if (
    fused &&
    (!broadcastsTo(fused.bias, info.outShape) ||
      !broadcastsTo(fused.prelu, info.outShape) ||
      (fused.activation === 'prelu' && fused.prelu === undefined))
  ) {
    return null;
  }
  const hx = b.handle(x),
    hf = b.handle(filter);
  const y = fused
    ? native.conv(
        hx,
        hf,
        g.strides,
        g.dilations,
        g.pads,
        groups,
        fused.bias && b.handle(fused.bias),
        fused.activation ?? 'linear',
        fused.prelu && b.handle(fused.prelu),
        fused.leakyreluAlpha,
      )
    : native.conv(hx, hf, g.strides, g.dilations, g.pads, groups);
  return b.output(y, 'float32');
}

function backpropInput(b: AtenBackend, dy: TensorInfo, filter: TensorInfo, info: Info, groups: number) {
  const g = geometry(info);
  if (g === null || !util.arraysEqual(dy.shape, info.outShape)) return null;
  return b.output(
    native.convBackpropInput(b.handle(dy), b.handle(filter), info.inShape, g.strides, g.dilations, g.pads, groups),
    'float32',
  );
}

function backpropFilter(b: AtenBackend, x: TensorInfo, dy: TensorInfo, info: Info, groups: number) {
  const g = geometry(info);
  if (g === null || !util.arraysEqual(dy.shape, info.outShape)) return null;
  return b.output(
    native.convBackpropFilter(b.handle(x), b.handle(dy), info.filterShape, g.strides, g.dilations, g.pads, groups),
    'float32',
  );
}

type XF = { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
type DyF = { dy: TensorInfo; filter: TensorInfo };
type XDy = { x: TensorInfo; dy: TensorInfo };

function conv2dKernel(name: string, depthwise: boolean, fusedOp: boolean): KernelConfig {
  return nativeKernel(name, (b, { inputs, attrs }) => {
    // tfjs-layers may have re-registered tfjs-core's gradients since the backend loaded: Conv2D's
    // must be ours when this runs, and Relu's (an element-wise kernel) when it follows.
    ensureGradientOverrides();
    const { x, filter, bias, preluActivationWeights } = inputs as XF;
    const a = attrs as unknown as FusedConv2DAttrs;
    if (!float(x, filter, bias, preluActivationWeights) || !channelsLast(a.dataFormat)) return null;
    const info = backend_util.computeConv2DInfo(
      x.shape as Shape4,
      filter.shape as Shape4,
      a.strides,
      a.dilations ?? 1,
      a.pad,
      a.dimRoundingMode,
      depthwise,
    );
    const fused = fusedOp
      ? { bias, prelu: preluActivationWeights, activation: a.activation, leakyreluAlpha: a.leakyreluAlpha }
      : undefined;
    return forward(b, x, filter, info, depthwise ? x.shape[3] : 1, fused);
  });
}

export const kernels: KernelConfig[] = [
  conv2dKernel('Conv2D', false, false),
  conv2dKernel('FusedConv2D', false, true),
  conv2dKernel('DepthwiseConv2dNative', true, false),
  conv2dKernel('FusedDepthwiseConv2D', true, true),

  nativeKernel('Conv2DBackpropInput', (b, { inputs, attrs }) => {
    const { dy, filter } = inputs as DyF;
    const a = attrs as unknown as Conv2DBackpropInputAttrs;
    if (!float(dy, filter) || !channelsLast(a.dataFormat)) return null;
    // `dilations` is not a TF.js attribute here; the aten-only Conv2D gradient (gradients.ts) adds it.
    const info = backend_util.computeConv2DInfo(
      a.inputShape,
      filter.shape as Shape4,
      a.strides,
      (a as { dilations?: number | [number, number] }).dilations ?? 1,
      a.pad,
      a.dimRoundingMode,
    );
    return backpropInput(b, dy, filter, info, 1);
  }),
  nativeKernel('Conv2DBackpropFilter', (b, { inputs, attrs }) => {
    const { x, dy } = inputs as XDy;
    const a = attrs as unknown as Conv2DBackpropFilterAttrs;
    if (!float(x, dy) || !channelsLast(a.dataFormat)) return null;
    const info = backend_util.computeConv2DInfo(
      x.shape as Shape4,
      a.filterShape,
      a.strides,
      (a as { dilations?: number | [number, number] }).dilations ?? 1,
      a.pad,
      a.dimRoundingMode,
    );
    return backpropFilter(b, x, dy, info, 1);
  }),
  nativeKernel('DepthwiseConv2dNativeBackpropInput', (b, { inputs, attrs }) => {
    const { dy, filter } = inputs as DyF;
    const a = attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
    if (!float(dy, filter)) return null;
    const info = backend_util.computeConv2DInfo(
      a.inputShape,
      filter.shape as Shape4,
      a.strides,
      a.dilations,
      a.pad,
      a.dimRoundingMode,
      true,
    );
    return backpropInput(b, dy, filter, info, a.inputShape[3]);
  }),
  nativeKernel('DepthwiseConv2dNativeBackpropFilter', (b, { inputs, attrs }) => {
    const { x, dy } = inputs as XDy;
    const a = attrs as unknown as DepthwiseConv2dNativeBackpropFilterAttrs;
    if (!float(x, dy)) return null;
    const info = backend_util.computeConv2DInfo(
      x.shape as Shape4,
      a.filterShape,
      a.strides,
      a.dilations,
      a.pad,
      a.dimRoundingMode,
      true,
    );
    return backpropFilter(b, x, dy, info, x.shape[3]);
  }),

  nativeKernel('Conv3D', (b, { inputs, attrs }) => {
    const { x, filter } = inputs as XF;
    const a = attrs as unknown as Conv3DAttrs;
    if (!float(x, filter) || !channelsLast(a.dataFormat)) return null;
    const info = backend_util.computeConv3DInfo(
      x.shape as Shape5,
      filter.shape as Shape5,
      a.strides,
      a.dilations ?? 1,
      a.pad,
    );
    return forward(b, x, filter, info, 1);
  }),
  nativeKernel('Conv3DBackpropInputV2', (b, { inputs, attrs }) => {
    const { dy, filter } = inputs as DyF;
    const a = attrs as unknown as Conv3DBackpropInputV2Attrs;
    if (!float(dy, filter)) return null;
    const info = backend_util.computeConv3DInfo(a.inputShape, filter.shape as Shape5, a.strides, 1, a.pad);
    return backpropInput(b, dy, filter, info, 1);
  }),
  nativeKernel('Conv3DBackpropFilterV2', (b, { inputs, attrs }) => {
    const { x, dy } = inputs as XDy;
    const a = attrs as unknown as Conv3DBackpropFilterV2Attrs;
    if (!float(x, dy)) return null;
    const info = backend_util.computeConv3DInfo(x.shape as Shape5, a.filterShape, a.strides, 1, a.pad);
    return backpropFilter(b, x, dy, info, 1);
  }),
];
