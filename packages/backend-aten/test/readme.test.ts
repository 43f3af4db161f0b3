// The kernel count the READMEs state ("137 kernels") is the length of NATIVE_KERNELS, the one list the backend
// registers: adding a kernel without updating the sentence fails here rather than leaving the number stale.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NATIVE_KERNELS } from '../src/register_all_kernels';

// From dist/test/ (compiled) or test/ (the sources): the package's folder is the one with binding.gyp.
const pkg = [path.join(__dirname, '..'), path.join(__dirname, '..', '..')].find((d) =>
  fs.existsSync(path.join(d, 'binding.gyp')),
);
assert.ok(pkg, `no package folder above ${__dirname}`);
const READMES = {
  'README.md (repository root)': path.join(pkg, '..', '..', 'README.md'),
  'packages/backend-aten/README.md': path.join(pkg, 'README.md'),
};

/** Every "N kernels" of a text, as numbers. */
function statedKernelCounts(text: string): number[] {
  return [...text.matchAll(/\b(\d+) kernels\b/g)].map((m) => Number(m[1]));
}

test('the kernel count each README states is the number of native kernels registered', () => {
  const names = NATIVE_KERNELS.map((k) => k.kernelName);
  // A kernel listed twice would register once: the count is of distinct kernels.
  assert.equal(new Set(names).size, names.length, 'a kernel is listed twice in NATIVE_KERNELS');
  for (const [name, file] of Object.entries(READMES)) {
    const counts = statedKernelCounts(fs.readFileSync(file, 'utf8'));
    assert.ok(counts.length > 0, `${name} no longer states the kernel count ("N kernels"): update this test`);
    for (const n of counts)
      assert.equal(n, names.length, `${name} says ${n} kernels; NATIVE_KERNELS has ${names.length}`);
  }
});
