// One data store shared by the ATen backend and its private cpu backend (the fallback).
// An entry holds an ATen handle, a JS copy of the values, or both. The cpu backend reads
// entries through get(), which downloads from ATen on demand; the ATen backend uses raw().
import { DataId, DataStorage, DataType, TensorInfo, backend_util, engine, KernelBackend } from '@tensorflow/tfjs-core';
import { Handle, native } from './native';

export interface TensorEntry {
  handle?: Handle;
  /** Shape the handle was created with; a TensorInfo may view the same data with another shape. */
  handleShape?: number[];
  /** Views of `handle` with another shape or dtype, keyed by both; freed with the entry. */
  views?: Map<string, Handle>;
  values?: backend_util.BackendValues;
  dtype: DataType;
  refCount: number;
  complexTensorInfos?: { real: TensorInfo; imag: TensorInfo };
}

const ARRAY_TYPES: Partial<Record<DataType, Float32ArrayConstructor | Int32ArrayConstructor | Uint8ArrayConstructor>> =
  {
    float32: Float32Array,
    int32: Int32Array,
    bool: Uint8Array,
  };

export class SharedStorage extends DataStorage<TensorEntry> {
  constructor(owner: KernelBackend) {
    super(owner, engine());
  }

  /** The entry as it is, without downloading. */
  raw(dataId: DataId): TensorEntry {
    return super.get(dataId);
  }

  /** The entry with `values` present (what the cpu kernels expect). */
  override get(dataId: DataId): TensorEntry {
    const entry = super.get(dataId);
    if (entry.values === undefined && entry.handle !== undefined) {
      entry.values = native.download(entry.handle);
    }
    return entry;
  }

  /**
   * The entry's values as the typed array of its dtype. Some cpu kernels store, say, an
   * Int32Array for a float32 result, which the cpu backend converts on every read; this
   * converts once, and makes uploads see the right element type.
   */
  typed(entry: TensorEntry): backend_util.BackendValues {
    const Type = ARRAY_TYPES[entry.dtype];
    if (Type !== undefined && entry.values !== undefined && !(entry.values instanceof Type)) {
      entry.values = Type.from(entry.values as ArrayLike<number>);
    }
    return entry.values!;
  }
}
