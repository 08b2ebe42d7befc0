#!/usr/bin/env bash
# Installs the real programs the tests start (Debian, as root or with sudo): only what is
# missing, saying what; quick when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
apt_missing redis-server redis-server
apt_missing redis-cli redis-tools
apt_missing nginx nginx-light
apt_missing caddy caddy
apt_missing node nodejs npm
apt_missing npm npm
apt_missing wrk wrk
apt_missing musl-gcc musl-tools
# The private_key_jwt tests make their keys with `openssl genpkey` (testkit/src/keys.rs).
apt_missing openssl openssl
# The real-browser test drives Debian's Chromium (playwright-core downloads no browser).
apt_missing_path /usr/bin/chromium chromium
apt_install_queued
traefik_install
npm_install tests/idp
npm_install tests/browser
# The static binary the Docker image ships (scripts/smoke-static.sh).
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  echo "installing the Rust target x86_64-unknown-linux-musl (rustup)"
  rustup target add x86_64-unknown-linux-musl
fi
