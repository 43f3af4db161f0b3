// Keras weight files for the tests, written with h5wasm in the layout that
// src/models/backbones/keras_h5.ts reads.
type H5 = typeof import('h5wasm/node', { with: { 'resolution-mode': 'import' }});
type Group = InstanceType<H5['default']['Group']>;

async function lib(): Promise<H5['default']> {
  const m = await import('h5wasm/node');
  await m.default.ready;
  return m.default;
}

export interface H5Layer {
  name: string;
  /** Weights in Keras order, with their full names (e.g. 'conv2d_1/kernel:0'). */
  weights: Array<{ name: string; shape: number[]; data: Float32Array }>;
}

/**
 * Writes layers the way Keras' save_weights does (fixed-length ASCII name attributes, float32
 * datasets in per-layer groups), so that tests make weight files without Keras.
 */
export async function writeKerasH5(file: string, layers: readonly H5Layer[], kerasVersion = '2.1.4'): Promise<void> {
  const h5wasm = await lib();
  const f = new h5wasm.File(file, 'w');
  try {
    const fixed = (xs: string[]) => `A${Math.max(1, ...xs.map((s) => s.length))}`;
    const names = layers.map((l) => l.name);
    f.create_attribute('layer_names', names, [names.length], fixed(names));
    f.create_attribute('backend', 'tensorflow', null, fixed(['tensorflow']));
    f.create_attribute('keras_version', kerasVersion, null, fixed([kerasVersion]));
    for (const layer of layers) {
      const g = f.create_group(layer.name);
      const wn = layer.weights.map((w) => w.name);
      g.create_attribute('weight_names', wn, [wn.length], fixed(wn));
      for (const w of layer.weights) {
        const parts = w.name.split('/');
        const leaf = parts.pop()!;
        let parent: Group = g;
        for (const p of parts) parent = (parent.get(p) as Group | null) ?? parent.create_group(p);
        parent.create_dataset({ name: leaf, data: w.data, shape: w.shape, dtype: '<f' });
      }
    }
  } finally {
    f.close();
  }
}
