// Native kernels that only the gradient overrides in ../gradients.ts and the layer patches in
// ../layers.ts run: one pass where tfjs-core's gradients (or tfjs-layers' compositions) take
// several full-size ops, and a broadcast that copies nothing.
import { KernelConfig, TensorInfo, util } from '@tensorflow/tfjs-core';
import { BROADCAST_VIEW, RELU6, RELU6_GRAD, RELU_GRAD, SQUARE_GRAD } from '../gradients';
import { native } from '../native';
import { nativeKernel } from './kernel';

type DyX = { dy: TensorInfo; x: TensorInfo };
const float = (...ts: TensorInfo[]) => ts.every((t) => t.dtype === 'float32');

export const kernels: KernelConfig[] = [
  // inputs dy, x (same shape) -> dy * step(x)
  nativeKernel(RELU_GRAD, (b, { inputs }) => {
    const { dy, x } = inputs as DyX;
    if (!float(dy, x) || !util.arraysEqual(dy.shape, x.shape)) throw new Error(`${RELU_GRAD}: bad inputs`);
    return b.output(native.reluGrad(b.handle(dy), b.handle(x)), 'float32');
  }),
  // input x -> clamp(x, 0, 6): the relu6 activation of tfjs-layers on aten (../layers.ts)
  nativeKernel(RELU6, (b, { inputs }) => {
    const x = inputs.x as TensorInfo;
    if (!float(x)) throw new Error(`${RELU6}: float32 expected`);
    return b.output(native.unary('Relu6', b.handle(x)), 'float32');
  }),
  // inputs dy, x (same shape) -> dy where 0 < x < 6, else 0
  nativeKernel(RELU6_GRAD, (b, { inputs }) => {
    const { dy, x } = inputs as DyX;
    if (!float(dy, x) || !util.arraysEqual(dy.shape, x.shape)) throw new Error(`${RELU6_GRAD}: bad inputs`);
    return b.output(native.relu6Grad(b.handle(dy), b.handle(x)), 'float32');
  }),
  // inputs dy (broadcastable to x), x -> dy * 2x
  nativeKernel(SQUARE_GRAD, (b, { inputs }) => {
    const { dy, x } = inputs as DyX;
    if (!float(dy, x)) throw new Error(`${SQUARE_GRAD}: bad inputs`);
    return b.output(native.squareGrad(b.handle(dy), b.handle(x)), 'float32', x.shape);
  }),
  // input x, attrs shape (x's rank, x's sizes 1 or equal) -> x broadcast to shape, stride 0
  // along the broadcast dims. Consumers read it like any tensor; a download makes it dense.
  nativeKernel(BROADCAST_VIEW, (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    const shape = attrs!.shape as number[];
    return b.output(native.broadcastView(b.handle(x), shape), x.dtype, shape);
  }),
];
