#!/usr/bin/env bash
# Sets up (idempotently) and runs every test suite; the last line is the combined count.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-test-deps
node scripts/run-tests.js "$@"
