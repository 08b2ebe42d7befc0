#!/usr/bin/env bash
# The test command from the README: unit and integration tests, built once.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets --locked
