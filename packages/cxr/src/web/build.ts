// Builds the web page into dist/src/web/static (served by `cxr serve`): the client bundled by
// esbuild, the HTML and CSS, and TF.js's .wasm files for in-browser mode, all local (no CDN).
// Run by `npm run build` after tsc; `--check` also type-checks the client (it has its own
// tsconfig because it targets the browser).
import { execFileSync } from 'node:child_process';
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';

const PKG = path.resolve(__dirname, '..', '..', '..');
const SRC = path.join(PKG, 'src', 'web');
export const STATIC_DIR = path.join(PKG, 'dist', 'src', 'web', 'static');

function wasmDir(): string {
  return path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
}

export async function buildWeb(opts: { check?: boolean; minify?: boolean } = {}): Promise<void> {
  if (opts.check) {
    execFileSync(
      process.execPath,
      [require.resolve('typescript/bin/tsc'), '-p', path.join(SRC, 'client', 'tsconfig.json')],
      { stdio: 'inherit' },
    );
  }
  const tmp = `${STATIC_DIR}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(path.join(tmp, 'wasm'), { recursive: true });
  await esbuild.build({
    entryPoints: [path.join(SRC, 'client', 'main.ts')],
    outfile: path.join(tmp, 'app.js'),
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: ['chrome110', 'firefox115', 'safari16'],
    minify: opts.minify ?? true,
    sourcemap: true,
    legalComments: 'linked',
    // The wasm backend's Emscripten glue mentions Node modules on paths a browser never takes.
    external: ['fs', 'path', 'os', 'crypto', 'worker_threads', 'perf_hooks', 'util'],
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  });
  for (const f of ['index.html', 'style.css', 'favicon.svg'])
    fs.copyFileSync(path.join(SRC, 'page', f), path.join(tmp, f));
  for (const f of fs.readdirSync(wasmDir()).filter((n) => n.endsWith('.wasm'))) {
    fs.copyFileSync(path.join(wasmDir(), f), path.join(tmp, 'wasm', f));
  }
  fs.rmSync(STATIC_DIR, { recursive: true, force: true });
  fs.renameSync(tmp, STATIC_DIR);
}

if (require.main === module) {
  const t0 = Date.now();
  buildWeb({ check: process.argv.includes('--check'), minify: !process.argv.includes('--no-minify') }).then(
    () =>
      process.stdout.write(
        `web page built into ${path.relative(process.cwd(), STATIC_DIR)} in ${Date.now() - t0} ms\n`,
      ),
    (e: unknown) => {
      process.stderr.write(`web build failed: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
