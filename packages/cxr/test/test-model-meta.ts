// The cxr.json of the tests' tiny cxrnet model folders (serve-fixtures' random one, ood-fixtures' seeded one):
// the same calibration and operating points, so that a test reads the same thresholds from either.
import { MODEL_FORMAT, type ModelMeta } from '../src/models/metadata';
import type { TtaView } from '../src/models/tta_views';

export interface TestMetaOptions {
  name: string;
  inputSize: number;
  tta?: TtaView[];
  recipe: ModelMeta['recipe'];
  data: ModelMeta['data'];
  validation?: ModelMeta['validation'];
}

export function testModelMeta(o: TestMetaOptions): ModelMeta {
  return {
    format: MODEL_FORMAT,
    name: o.name,
    version: '0.0.1',
    arch: 'cxrnet',
    inputSize: o.inputSize,
    preprocessing: { resize: 'fill', scale: 1 / 255 },
    classNames: ['NORMAL', 'PNEUMONIA'],
    temperature: 1.5,
    logitBias: 0,
    operatingPoints: {
      screening: { threshold: 0.3, sensitivity: 0.95, specificity: 0.5 },
      balanced: { threshold: 0.5, sensitivity: 0.85, specificity: 0.85 },
    },
    defaultOperatingPoint: 'balanced',
    tta: o.tta ?? [],
    members: [],
    recipe: o.recipe,
    data: o.data,
    // Key order as the fixtures always wrote it: validation (where given) before createdAt.
    ...(o.validation ? { validation: o.validation } : {}),
    createdAt: new Date().toISOString(),
  };
}
