#!/usr/bin/env bash
# Sets up (idempotently) and starts the web app with the shipped model on http://127.0.0.1:8080.
# Extra arguments go to `cxr serve` (e.g. --port 9000 --host 0.0.0.0).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec node packages/cxr/dist/src/cli/main.js serve --model models/default "$@"
