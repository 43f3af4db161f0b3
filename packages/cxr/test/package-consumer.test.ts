// The two packages as a program outside this repository gets them: the tarballs `npm pack` makes of
// packages/cxr (@cxr/app) and packages/backend-aten, read with `npm pack --dry-run --json` (nothing is
// written; about 5 s). A consumer has only what is in the tarball: no tests, no data, no repository root
// (tsconfig.base.json, the root LICENSE, the root's devDependencies hoisted into node_modules).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { builtinModules } from 'node:module';
import * as path from 'node:path';

const packagesDir = path.resolve(__dirname, '..', '..', '..');
const PACKAGES = ['cxr', 'backend-aten'] as const;
type PackageName = (typeof PACKAGES)[number];

interface Manifest {
  name: string;
  license?: string;
  main?: string;
  types?: string;
  bin?: Record<string, string>;
  exports?: Record<string, string | Record<string, string>>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const manifest = (name: PackageName): Manifest =>
  JSON.parse(fs.readFileSync(path.join(packagesDir, name, 'package.json'), 'utf8')) as Manifest;

const packed = new Map<PackageName, Set<string>>();
/** The paths the package's tarball would hold (relative to the package folder). */
function tarball(name: PackageName): Set<string> {
  const known = packed.get(name);
  if (known) return known;
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: path.join(packagesDir, name),
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(r.status, 0, `npm pack --dry-run in packages/${name} failed: ${r.stderr}`);
  const [info] = JSON.parse(r.stdout) as { files: { path: string }[] }[];
  const files = new Set(info.files.map((f) => f.path));
  packed.set(name, files);
  return files;
}

const strip = (p: string): string => p.replace(/^\.\//, '');

/** Every file a consumer's `require`, `import`, types lookup or `npx` reaches through the manifest. */
function entryPoints(m: Manifest): string[] {
  const out: string[] = [];
  if (m.main) out.push(m.main);
  if (m.types) out.push(m.types);
  for (const file of Object.values(m.bin ?? {})) out.push(file);
  for (const target of Object.values(m.exports ?? {})) {
    out.push(...(typeof target === 'string' ? [target] : Object.values(target)));
  }
  return out.map(strip);
}

for (const name of PACKAGES) {
  test(`packages/${name}: the tarball holds what its manifest points at, and no tests, data or secrets`, () => {
    const files = tarball(name);
    const m = manifest(name);
    for (const entry of entryPoints(m)) assert.ok(files.has(entry), `${m.name}: ${entry} is not in the tarball`);
    const unwanted = [...files].filter(
      (f) =>
        /^(dist\/)?test\//.test(f) ||
        /^build\//.test(f) ||
        /\.(jpe?g|dcm|h5|npy|db|sqlite|pem|key|p12|tgz)$/i.test(f) ||
        /(^|\/)(\.env[^/]*|\.npmrc|id_rsa[^/]*)$/.test(f),
    );
    assert.deepEqual(unwanted, [], `${m.name}: the tarball would ship tests, build output, data or secrets`);
  });

  test(`packages/${name}: the declarations' /// <reference path> files are in the tarball`, () => {
    const files = tarball(name);
    const dir = path.join(packagesDir, name);
    for (const f of files) {
      if (!f.endsWith('.d.ts') || !f.startsWith('dist/')) continue;
      const text = fs.readFileSync(path.join(dir, f), 'utf8');
      for (const [, ref] of text.matchAll(/^\/\/\/ <reference path="([^"]+)"/gm)) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(f), ref));
        assert.ok(files.has(target), `${f} references ${ref} (${target}), which the tarball lacks`);
      }
    }
  });

  // npm packs only the package folder's files: each package carries its own copy of the root LICENSE.
  test(`packages/${name}: a license field and a LICENSE file`, () => {
    assert.equal(manifest(name).license, 'Apache-2.0');
    assert.ok(tarball(name).has('LICENSE'), `${manifest(name).name}: the tarball has no LICENSE`);
  });
}

const builtins = new Set(builtinModules.flatMap((b) => [b, `node:${b}`]));
/** A bare specifier's package: `@scope/name` or `name`. */
const packageOf = (spec: string): string =>
  spec
    .split('/')
    .slice(0, spec.startsWith('@') ? 2 : 1)
    .join('/');
const typesPackage = (pkg: string): string => `@types/${pkg.replace(/^@([^/]+)\//, '$1__')}`;

// A module a shipped .d.ts imports that only the repository's devDependencies provide resolves to nothing in a
// consumer's project: its types become `any` (json-schema-to-ts's FromSchema made Prediction['verdict']
// optional) or, without skipLibCheck, TS2307.
test('the modules the shipped declarations import are dependencies, not devDependencies', () => {
  for (const name of PACKAGES) {
    const m = manifest(name);
    const provided = new Set([...Object.keys(m.dependencies ?? {}), ...Object.keys(m.peerDependencies ?? {})]);
    const dir = path.join(packagesDir, name);
    const declarations = [...tarball(name)]
      .filter((f) => f.endsWith('.d.ts'))
      .map((f) => ({ f, text: fs.readFileSync(path.join(dir, f), 'utf8') }));
    // Modules a shipped file declares itself (dcmjs: src/dicom_out/dcmjs.d.ts).
    const declared = new Set(
      declarations.flatMap(({ text }) => [...text.matchAll(/declare module ['"]([^'"]+)['"]/g)].map((x) => x[1])),
    );
    const missing = new Set<string>();
    for (const { f, text } of declarations) {
      for (const [, spec] of text.matchAll(/(?:from|import\(|require\()\s*['"]([^'".][^'"]*)['"]/g)) {
        const pkg = packageOf(spec);
        if (builtins.has(spec) || declared.has(spec) || pkg === m.name) continue;
        if (provided.has(pkg) || provided.has(typesPackage(pkg))) continue;
        missing.add(`${pkg} (${f})`);
      }
    }
    assert.deepEqual([...missing], [], `${m.name}: move these to dependencies`);
  }
});

// `npm install` of the tarball runs the install script in node_modules/<name>. The tarball ships dist/, so the
// script must not compile again there: a `tsc -p .` reads tsconfig.json, whose `extends` names the repository's
// tsconfig.base.json, which no tarball carries (TS5083, and the whole install failed). Run here on a copy of the
// tarball's files, the native addon's build (which needs no tsconfig) left out.
test("an install script run on the tarball's files does not rebuild what the tarball ships", () => {
  for (const name of PACKAGES) {
    const m = manifest(name);
    const script = (m.scripts?.install ?? '').replace(/^node scripts\/build-native\.js && /, '');
    if (!script) continue;
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), `cxr-pack-${name}-`));
    try {
      for (const f of tarball(name)) {
        fs.mkdirSync(path.dirname(path.join(copy, f)), { recursive: true });
        fs.copyFileSync(path.join(packagesDir, name, f), path.join(copy, f));
      }
      // tsc on the PATH, as npm puts node_modules/.bin there: were the script to call it, it would fail as above.
      const bin = path.join(packagesDir, '..', 'node_modules', '.bin');
      const r = spawnSync('sh', ['-c', script], {
        cwd: copy,
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      });
      assert.equal(r.status, 0, `${m.name}: its install script failed on the tarball's files: ${r.stdout}${r.stderr}`);
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
  }
});

// The other side of the same script: in a checkout (the repository's tsconfig.base.json two folders up) it
// compiles every time, dist/ there or not. `git pull && npm ci --omit=dev` upgrades a production clone
// (docs/deployment.md), and a script that kept any dist/ it found left the old version's JavaScript running.
test('an install script run in a checkout compiles again, over an older dist/', () => {
  for (const name of PACKAGES) {
    const m = manifest(name);
    const script = (m.scripts?.install ?? '').replace(/^node scripts\/build-native\.js && /, '');
    if (!script) continue;
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `cxr-checkout-${name}-`));
    try {
      const pkg = path.join(root, 'packages', name);
      fs.mkdirSync(path.join(pkg, 'dist', 'src'), { recursive: true });
      fs.writeFileSync(path.join(pkg, 'dist', 'src', 'index.js'), '// built by an older version\n');
      fs.writeFileSync(path.join(root, 'tsconfig.base.json'), '{}\n');
      // A tsc that only says it ran (and fails, so that nothing after it runs on this bare copy).
      const bin = path.join(root, 'bin');
      fs.mkdirSync(bin);
      fs.writeFileSync(path.join(bin, 'tsc'), `#!/bin/sh\ntouch "${path.join(root, 'compiled')}"\nexit 1\n`, {
        mode: 0o755,
      });
      spawnSync('sh', ['-c', script], {
        cwd: pkg,
        encoding: 'utf8',
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      });
      assert.ok(fs.existsSync(path.join(root, 'compiled')), `${m.name}: its install script kept the older dist/`);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
});
