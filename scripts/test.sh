#!/usr/bin/env bash
# The test command from the README: installs what the tests start (only what is missing), then
# runs the unit, in-process and integration tests, built once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo test --workspace --all-targets --locked
