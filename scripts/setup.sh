#!/usr/bin/env bash
# Idempotent setup on a fresh Debian machine: system packages, npm dependencies, native addon, TypeScript.
# Usage: scripts/setup.sh [--with-test-deps]
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# libtorch-dev: ATen for the engine. fonts-dejavu-core: text in rendered plots.
pkgs=(libtorch-dev g++ make python3 fonts-dejavu-core)
if [ "${1:-}" = "--with-test-deps" ]; then
  # chromium: the web page's end-to-end test. orthanc*: the PACS end-to-end test; postgresql: the
  # shared audit log's tests; redis-server: the job queue's (all started by scripts/stack.sh). dcmtk: its SR
  # and DICOM checkers validate the reports and heat maps cxr writes (test/dicom-conformance.test.ts).
  # prometheus: its promtool lints a real /metrics scrape (test/serve-metrics-promtool.test.ts).
  pkgs+=(chromium orthanc orthanc-dicomweb postgresql redis-server dcmtk prometheus)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.cxr-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

npm run build --silent

# npm ci ran before dist/ existed, so it could not link the `cxr` command: link it (and mark it executable) now.
npm rebuild --ignore-scripts --silent -w packages/cxr
