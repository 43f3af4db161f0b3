#!/usr/bin/env bash
# Proves that a production install works: clones this checkout's HEAD (committed files only) to a
# temp folder, runs `npm ci --omit=dev` there (from npm's cache when it has the packages), checks
# that no development package came along, then runs `cxr --help` and one prediction with the
# shipped model. Needs the system packages of scripts/setup.sh (libtorch-dev, g++, make, python3).
# Usage: scripts/check-prod-install.sh   (CXR_KEEP_TMP=1 keeps the clone)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)
say() { echo "check-prod-install [$(($(date +%s) - START))s]: $*"; }

if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  say "note: uncommitted changes are not part of the check (it clones HEAD $(git rev-parse --short HEAD))"
fi
TMP=$(mktemp -d /tmp/cxr-prod.XXXXXX)
cleanup() { if [ "${CXR_KEEP_TMP:-}" = 1 ]; then echo "check-prod-install: kept $TMP"; else rm -rf "$TMP"; fi; }
trap cleanup EXIT

git clone -q --no-hardlinks "$ROOT" "$TMP/cxr"
cd "$TMP/cxr"
say "npm ci --omit=dev in $TMP/cxr"
npm ci --omit=dev --prefer-offline --no-audit --no-fund >"$TMP/npm-ci.log" 2>&1 || { tail -40 "$TMP/npm-ci.log"; exit 1; }
say "installed: $(du -sh node_modules | cut -f1) in node_modules"

# Nothing that only development needs: the linter, the test browser, the type packages.
for dev in @biomejs/biome playwright-core @types/better-sqlite3 autocannon; do
  [ ! -e "node_modules/$dev" ] || { echo "check-prod-install: $dev was installed by --omit=dev" >&2; exit 1; }
done
for built in packages/backend-aten/build/Release/aten.node packages/backend-aten/dist/src/index.js \
  packages/cxr/dist/src/cli/main.js packages/cxr/dist/src/web/static/index.html; do
  [ -f "$built" ] || { echo "check-prod-install: $built was not built at install" >&2; exit 1; }
done

CXR="node packages/cxr/dist/src/cli/main.js"
$CXR --help >/dev/null
say "cxr --help: ok"

FILM=""
for d in "${CXR_DATA:-$ROOT/../shared/data}/samples-fullres/NORMAL" /work/shared/data/samples-fullres/NORMAL; do
  FILM=$(ls "$d"/*.jpeg 2>/dev/null | head -1) && [ -n "$FILM" ] && break
done
if [ -z "$FILM" ]; then
  FILM="$TMP/film.png"
  node -e "const sharp=require('sharp');const px=Buffer.alloc(512*512);for(let i=0;i<px.length;i++)px[i]=(i%512)/2;
    sharp(px,{raw:{width:512,height:512,channels:1}}).png().toFile('$FILM')"
  say "no sample film found: using a generated gradient"
fi
$CXR predict "$FILM" --model models/default --db "$TMP/audit.db" --json >"$TMP/predict.json"
node -e "
const rows = JSON.parse(require('node:fs').readFileSync(process.argv[1], 'utf8'));
const r = rows[0];
if (!r || r.error || !(r.probability >= 0 && r.probability <= 1)) throw new Error('no prediction: ' + JSON.stringify(r));
console.log('check-prod-install: predicted ' + r.label + ' p=' + r.probability.toFixed(3));
" "$TMP/predict.json"
say "all passed in $(($(date +%s) - START)) s"
