// Image kernels (NHWC): resizing and its gradients, flips, crops, projective transforms and
// rotation, i.e. what per-batch data augmentation runs every step.
import { KernelConfig, TensorInfo, backend_util } from '@tensorflow/tfjs-core';
import { FillMode, native } from '../native';
import { nativeKernel } from './kernel';

interface ResizeAttrs {
  alignCorners: boolean;
  halfPixelCenters: boolean;
  size: [number, number];
}

const isImage = (t: TensorInfo) => t.shape.length === 4;
const FILL_MODES: readonly FillMode[] = ['constant', 'reflect', 'wrap', 'nearest'];
const isFillMode = (m: string): m is FillMode => (FILL_MODES as readonly string[]).includes(m);
const isFloatImage = (t: TensorInfo) => isImage(t) && t.dtype === 'float32';
// An image with no rows or columns resizes to NaN on cpu (it reads past the data); leave it there.
const isResizable = (t: TensorInfo) => isImage(t) && t.shape[1] > 0 && t.shape[2] > 0;
const isResizeGrad = (images: TensorInfo, dy: TensorInfo) =>
  isResizable(images) && isFloatImage(dy) && dy.shape[0] === images.shape[0] && dy.shape[3] === images.shape[3];

export const kernels: KernelConfig[] = [
  nativeKernel('ResizeBilinear', (b, { inputs, attrs }) => {
    const images = inputs.images as TensorInfo;
    const {
      alignCorners,
      halfPixelCenters,
      size: [h, w],
    } = attrs as unknown as ResizeAttrs;
    if (!isFloatImage(images) || !isResizable(images)) return null;
    const [n, , , c] = images.shape;
    return b.output(native.resizeBilinear(b.handle(images), h, w, alignCorners, halfPixelCenters), 'float32', [
      n,
      h,
      w,
      c,
    ]);
  }),
  // Shaped like `images`; the cpu kernel reports [b, width, height, c] (a transposition bug
  // that only shows for non-square images) and ignores halfPixelCenters (see ops_image.cc).
  nativeKernel('ResizeBilinearGrad', (b, { inputs, attrs }) => {
    const { images, dy } = inputs as { images: TensorInfo; dy: TensorInfo };
    const { alignCorners, halfPixelCenters } = attrs as unknown as ResizeAttrs;
    if (!isResizeGrad(images, dy)) return null;
    const [, h, w] = images.shape;
    return b.output(
      native.resizeBilinearGrad(b.handle(dy), h, w, alignCorners, halfPixelCenters),
      'float32',
      images.shape,
    );
  }),
  nativeKernel('ResizeNearestNeighbor', (b, { inputs, attrs }) => {
    const images = inputs.images as TensorInfo;
    const {
      alignCorners,
      halfPixelCenters,
      size: [h, w],
    } = attrs as unknown as ResizeAttrs;
    if (!isResizable(images) || !b.nativeable(images)) return null;
    const [n, , , c] = images.shape;
    return b.output(native.resizeNearest(b.handle(images), h, w, alignCorners, halfPixelCenters), images.dtype, [
      n,
      h,
      w,
      c,
    ]);
  }),
  nativeKernel('ResizeNearestNeighborGrad', (b, { inputs, attrs }) => {
    const { images, dy } = inputs as { images: TensorInfo; dy: TensorInfo };
    const { alignCorners, halfPixelCenters } = attrs as unknown as ResizeAttrs;
    if (!isResizeGrad(images, dy)) return null;
    const [, h, w] = images.shape;
    return b.output(
      native.resizeNearestGrad(b.handle(dy), h, w, alignCorners, halfPixelCenters),
      'float32',
      images.shape,
    );
  }),
  nativeKernel('FlipLeftRight', (b, { inputs }) => {
    const image = inputs.image as TensorInfo;
    if (!isImage(image) || !b.nativeable(image)) return null;
    return b.output(native.reverse(b.handle(image), [2]), image.dtype, image.shape);
  }),
  nativeKernel('CropAndResize', (b, { inputs, attrs }) => {
    const { image, boxes, boxInd } = inputs as { image: TensorInfo; boxes: TensorInfo; boxInd: TensorInfo };
    const {
      cropSize: [h, w],
      method,
      extrapolationValue,
    } = attrs as { cropSize: [number, number]; method: string; extrapolationValue: number };
    if (!isFloatImage(image) || boxes.dtype !== 'float32' || boxInd.dtype !== 'int32') return null;
    const out = native.cropAndResize(
      b.handle(image),
      b.handle(boxes),
      b.handle(boxInd),
      h,
      w,
      method === 'nearest',
      extrapolationValue,
    );
    return b.output(out, 'float32', [boxes.shape[0], h, w, image.shape[3]]);
  }),
  nativeKernel('Transform', (b, { inputs, attrs }) => {
    const { image, transforms } = inputs as { image: TensorInfo; transforms: TensorInfo };
    const { interpolation, fillMode, fillValue, outputShape } = attrs as {
      interpolation: string;
      fillMode: string;
      fillValue: number;
      outputShape?: [number, number] | null;
    };
    if (!isFloatImage(image) || transforms.dtype !== 'float32') return null;
    if (interpolation !== 'nearest' && interpolation !== 'bilinear') return null;
    const [n, ih, iw, c] = image.shape;
    const [h, w] = outputShape ?? [ih, iw];
    // The cpu kernel returns after the first image, leaving the rest at fillValue; this
    // transforms every image, as TensorFlow does.
    const mode = isFillMode(fillMode) ? fillMode : 'constant';
    const out = native.transform(
      b.handle(image),
      b.handle(transforms),
      interpolation === 'nearest',
      mode,
      fillValue ?? 0,
      h,
      w,
    );
    return b.output(out, 'float32', [n, h, w, c]);
  }),
  nativeKernel('RotateWithOffset', (b, { inputs, attrs }) => {
    const image = inputs.image as TensorInfo;
    const { radians, fillValue, center } = attrs as {
      radians: number;
      fillValue: number | number[];
      center: number | [number, number];
    };
    if (!isFloatImage(image)) return null;
    const [, h, w, c] = image.shape;
    const [cx, cy] = backend_util.getImageCenter(center, h, w);
    // An RGB fill leaves a fourth (alpha) channel opaque, as the cpu kernel does.
    const fill = Array.from({ length: c }, (_, i) =>
      typeof fillValue === 'number' ? fillValue : i === 3 ? 255 : (fillValue[i] ?? NaN),
    );
    const out = native.rotate(b.handle(image), Math.sin(radians), Math.cos(radians), cx, cy, fill);
    return b.output(out, 'float32', image.shape);
  }),
];
