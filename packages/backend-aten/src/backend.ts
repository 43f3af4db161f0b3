// The TF.js backend 'aten'. Tensor data lives in ATen tensors held by the addon; JS gets a copy
// only when JS reads. Kernels without a native version run the cpu backend's kernel against
// a private MathBackendCPU that shares this backend's data store (see fallback()).
import {
  BackendTimingInfo,
  DataId,
  DataType,
  KernelBackend,
  NamedAttrMap,
  NamedTensorInfoMap,
  Tensor,
  TensorInfo,
  backend_util,
  engine,
  getKernel,
  util,
} from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { Handle, NativeDType, native } from './native';
import { SharedStorage } from './storage';

export const BACKEND_NAME = 'aten';

export interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}

const NATIVE_DTYPES = new Set<DataType>(['float32', 'int32', 'bool']);
/** A tensor whose dtype the addon stores. */
export type NativeTensorInfo = TensorInfo & { dtype: NativeDType };

let nextId = 0;

export class AtenBackend extends KernelBackend {
  readonly data: SharedStorage;
  /** Private cpu backend used by fallback kernels; it shares `data`. */
  readonly cpu: MathBackendCPU;

  constructor() {
    super();
    this.data = new SharedStorage(this);
    this.cpu = new MathBackendCPU();
    const cpu = this.cpu as unknown as Record<string, unknown>;
    cpu.data = this.data;
    // Its "install tfjs-node" notice would be printed on the first fallback.
    cpu.firstUse = false;
    // Lifetime is managed here so that native handles are freed and nothing is downloaded
    // just to count references.
    cpu.disposeData = (id: DataId, force?: boolean) => this.disposeData(id, force);
    cpu.incRef = (id: DataId) => this.incRef(id);
    cpu.decRef = (id: DataId) => {
      this.data.raw(id).refCount--;
    };
    cpu.refCount = (id: DataId) => this.refCount(id);
    cpu.makeOutput = (values: backend_util.BackendValues, shape: number[], dtype: DataType) =>
      engine().makeTensorFromTensorInfo(this.cpu.makeTensorInfo(shape, dtype, values), this);
  }

  // ---- data movement -------------------------------------------------------------------

  override write(values: backend_util.BackendValues, _shape: number[], dtype: DataType): DataId {
    const dataId = { id: nextId++ };
    this.data.set(dataId, { values, dtype, refCount: 1 });
    return dataId;
  }

  override move(
    dataId: DataId,
    values: backend_util.BackendValues,
    _shape: number[],
    dtype: DataType,
    refCount: number,
  ): void {
    this.data.set(dataId, { values, dtype, refCount });
  }

  makeTensorInfo(shape: number[], dtype: DataType, values?: backend_util.BackendValues | string[]): TensorInfo {
    return this.cpu.makeTensorInfo(shape, dtype, values);
  }

  /** Wraps a native result as a TensorInfo owned by this backend. */
  output(handle: Handle, dtype: DataType, shape?: number[]): TensorInfo {
    // Every later upload, view and download assumes the handle holds `dtype`; ATen results such
    // as indices (int64) or float quotients declared int32 are converted here, once.
    if (native.dtype(handle) !== dtype) {
      const cast = native.cast(handle, dtype as NativeDType);
      native.free(handle);
      handle = cast;
    }
    const s = shape ?? native.shape(handle);
    const dataId = { id: nextId++ };
    this.data.set(dataId, { handle, handleShape: s, dtype, refCount: 1 });
    return { dataId, shape: s, dtype };
  }

  /**
   * Native handle for a tensor with the TensorInfo's shape and dtype, uploaded on first use.
   * Views with another shape (tf.reshape shares the dataId) or dtype (cpu Cast may too) are
   * kept on the entry and freed with it: a view left to the GC would keep the storage alive
   * after dispose, and replacing the entry's handle would free one another input still uses.
   */
  handle(t: TensorInfo): Handle {
    const entry = this.data.raw(t.dataId);
    if (entry.handle === undefined) {
      if (!NATIVE_DTYPES.has(entry.dtype) || entry.values === undefined) {
        throw new Error(`aten: a ${t.dtype} tensor cannot be used by a native kernel`);
      }
      const values = this.data.typed(entry) as Float32Array | Int32Array | Uint8Array;
      entry.handle =
        values.length === 1 && t.shape.length === 0
          ? native.scalar(values[0], entry.dtype as NativeDType)
          : native.upload(values, t.shape);
      entry.handleShape = t.shape.slice();
    }
    if (entry.dtype === t.dtype && util.arraysEqual(entry.handleShape!, t.shape)) return entry.handle;
    const key = `${t.dtype}[${t.shape}]`;
    entry.views ??= new Map();
    let view = entry.views.get(key);
    if (view === undefined) {
      view = native.reshape(entry.handle, t.shape);
      if (entry.dtype !== t.dtype) {
        const cast = native.cast(view, t.dtype as NativeDType);
        native.free(view);
        view = cast;
      }
      entry.views.set(key, view);
    }
    return view;
  }

  /** True when every input can go to a native kernel (no string/complex data); then the first
   * one's dtype is known to be a NativeDType. */
  nativeable(t: TensorInfo, ...more: TensorInfo[]): t is NativeTensorInfo {
    if (!NATIVE_DTYPES.has(t.dtype)) return false;
    for (const u of more) if (!NATIVE_DTYPES.has(u.dtype)) return false;
    return true;
  }

  /** Runs the cpu backend's kernel for `kernelName` on this backend's data. */
  fallback(kernelName: string, args: KernelArgs): TensorInfo | TensorInfo[] {
    const kernel = getKernel(kernelName, 'cpu');
    if (kernel == null) throw new Error(`aten: no kernel ${kernelName} (native or cpu)`);
    return kernel.kernelFunc({ ...args, backend: this.cpu, attrs: args.attrs ?? {} });
  }

  override readSync(dataId: DataId): backend_util.BackendValues {
    const entry = this.data.raw(dataId);
    if (entry.complexTensorInfos != null || entry.dtype === 'string') return this.cpu.readSync(dataId);
    return this.data.typed(this.data.get(dataId));
  }

  override read(dataId: DataId): Promise<backend_util.BackendValues> {
    // Read now: the tensor may be disposed before the promise settles (tfjs allows that).
    // Resolve on a macrotask: handle wrappers are finalised by the event loop, and a training
    // loop that only ever awaits reads would otherwise never let it run (RSS grows).
    try {
      const values = this.readSync(dataId);
      return new Promise((resolve) => setImmediate(() => resolve(values)));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  override readToGPU(): never {
    throw new Error('aten: readToGPU is not supported (CPU backend)');
  }

  bufferSync(t: TensorInfo) {
    return this.cpu.bufferSync(t);
  }

  // ---- lifetime ---------------------------------------------------------------------

  override refCount(dataId: DataId): number {
    return this.data.has(dataId) ? this.data.raw(dataId).refCount : 0;
  }

  override incRef(dataId: DataId): void {
    this.data.raw(dataId).refCount++;
  }

  override disposeData(dataId: DataId, force = false): boolean {
    if (!this.data.has(dataId)) return true;
    const entry = this.data.raw(dataId);
    entry.refCount--;
    if (!force && entry.refCount > 0) return false;
    if (entry.handle !== undefined) native.free(entry.handle);
    entry.views?.forEach((v) => native.free(v));
    if (entry.complexTensorInfos != null) {
      this.disposeData(entry.complexTensorInfos.real.dataId, true);
      this.disposeData(entry.complexTensorInfos.imag.dataId, true);
    }
    this.data.delete(dataId);
    return true;
  }

  disposeIntermediateTensorInfo(t: TensorInfo): void {
    this.disposeData(t.dataId);
  }

  override numDataIds(): number {
    return this.data.numDataIds();
  }

  override memory() {
    const m = native.memory();
    return { unreliable: false, numBytesInNative: m.bytesInUse, numBytesCachedNative: m.bytesCached } as {
      unreliable: boolean;
    };
  }

  override async time(f: () => void): Promise<BackendTimingInfo> {
    const start = util.now();
    f();
    return { kernelMs: util.now() - start };
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override dispose(): void {
    native.emptyCache();
  }

  where(condition: Tensor) {
    return this.cpu.where(condition);
  }
}
