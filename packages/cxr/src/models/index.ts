// The architectures cxr can train, by name.
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { cxrnet } from './cxrnet';
import { deadskull7 } from './deadskull7';
import { madz2000 } from './madz2000';
import { reference } from './reference';

export interface Architecture {
  name: string;
  description: string;
  defaultInputSize: number;
  build(inputSize: number): LayersModel;
}

/** What a recipe's `arch` and `cxr train --model` accept. */
export const ARCH_NAMES = ['deadskull7', 'madz2000', 'cxrnet', 'reference'] as const;
export type ArchName = (typeof ARCH_NAMES)[number];

export const ARCHITECTURES: Record<ArchName, Architecture> = {
  deadskull7: {
    name: 'deadskull7',
    defaultInputSize: 150,
    build: deadskull7,
    description:
      "The seed's baseline CNN (deadskull7 repo): paired 3x3 convs 16-128, dilation 2 in the last two blocks",
  },
  madz2000: {
    name: 'madz2000',
    defaultInputSize: 150,
    build: madz2000,
    description: 'The madz2000 Kaggle notebook CNN: 5 conv blocks with batch norm and dropout',
  },
  cxrnet: {
    name: 'cxrnet',
    defaultInputSize: 192,
    build: (s) => cxrnet({ inputSize: s }),
    description: "cxr's residual CNN: stride-2 stem, four residual stages, global average pooling",
  },
  reference: {
    name: 'reference',
    defaultInputSize: 128,
    build: reference,
    description: "The engine benchmark's reference CNN: 4 x (conv, batch norm, max pool), GAP",
  },
};

export function architecture(name: string): Architecture {
  const a = (ARCH_NAMES as readonly string[]).includes(name) ? ARCHITECTURES[name as ArchName] : undefined;
  if (!a) throw new Error(`unknown model architecture '${name}' (known: ${Object.keys(ARCHITECTURES).join(', ')})`);
  return a;
}
