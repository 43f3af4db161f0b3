// Keras weight files (HDF5, as written by model.save_weights / Keras Applications), read with
// h5wasm, the HDF5 C library compiled to WebAssembly (no native build, works offline; the tests
// write such files with it, test/keras-h5-writer.ts). Layout: attribute `layer_names` on the root
// (or on `model_weights` for a whole saved model); one group per layer with attribute
// `weight_names`; each weight a dataset at `<layer>/<weight name>`, e.g.
// `conv2d_1/conv2d_1/kernel:0`. Keras splits attributes over 64 KiB into `name0`, `name1`, ...
import type { WeightArray, WeightMap } from './weight_map';

type H5 = typeof import('h5wasm/node', { with: { 'resolution-mode': 'import' }});
type Group = InstanceType<H5['default']['Group']>;
let h5: Promise<H5['default']> | null = null;

async function lib(): Promise<H5['default']> {
  h5 ??= import('h5wasm/node').then(async (m) => {
    await m.default.ready;
    return m.default;
  });
  return h5;
}

function strings(v: unknown): string[] {
  if (v == null) return [];
  const arr = Array.isArray(v) ? v : [v];
  return arr.map((s) => (s instanceof Uint8Array ? Buffer.from(s).toString('latin1') : String(s)).replace(/\0+$/, ''));
}

function stringAttr(g: Group, name: string): string[] {
  const attrs = g.attrs;
  if (name in attrs) return strings(attrs[name].value);
  const out: string[] = [];
  for (let i = 0; `${name}${i}` in attrs; i++) out.push(...strings(attrs[`${name}${i}`].value));
  return out;
}

/**
 * Every layer's weights in a Keras .h5 file, keyed by layer name, then by short weight name
 * ('kernel', 'gamma', ...).
 */
export async function readKerasH5(file: string): Promise<WeightMap> {
  const h5wasm = await lib();
  const f = new h5wasm.File(file, 'r');
  try {
    const rootObj = f.get('model_weights');
    const root = (rootObj instanceof h5wasm.Group ? rootObj : f) as Group;
    const layerNames = stringAttr(root, 'layer_names');
    if (layerNames.length === 0) throw new Error(`${file}: no 'layer_names' attribute (not a Keras weights file)`);
    const out: WeightMap = new Map();
    for (const layer of layerNames) {
      const g = root.get(layer);
      if (!(g instanceof h5wasm.Group)) throw new Error(`${file}: layer '${layer}' is listed but has no group`);
      const names = stringAttr(g, 'weight_names');
      if (names.length === 0) continue;
      const weights = new Map<string, WeightArray>();
      for (const wn of names) {
        const d = g.get(wn);
        if (!(d instanceof h5wasm.Dataset)) throw new Error(`${file}: weight '${layer}/${wn}' is listed but missing`);
        const value = d.value;
        if (!(value instanceof Float32Array || value instanceof Float64Array)) {
          throw new Error(`${file}: weight '${layer}/${wn}' has dtype ${String(d.dtype)}, expected float`);
        }
        weights.set(shortWeightName(wn), { shape: [...d.shape!], data: Float32Array.from(value) });
      }
      out.set(layer, weights);
    }
    return out;
  } finally {
    f.close();
  }
}

/** 'conv2d_1/kernel:0' -> 'kernel'. */
export function shortWeightName(name: string): string {
  return name.split('/').pop()!.replace(/:\d+$/, '');
}
