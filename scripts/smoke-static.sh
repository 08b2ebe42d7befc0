#!/usr/bin/env bash
# Builds the static binary the Docker image ships (x86_64-unknown-linux-musl) and smoke-tests
# it: --version, a configuration error, and serving /healthz checked by its own `healthcheck`.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
cargo build --release --locked --target "$target"
bin="${CARGO_TARGET_DIR:-target}/$target/release/portcullis"

if ldd "$bin" 2>&1 | grep -q "=>"; then
  echo "smoke: $bin is not static:"; ldd "$bin"; exit 1
fi
"$bin" --version | grep -q "^portcullis " || { echo "smoke: --version failed"; exit 1; }

# Bad configuration: non-zero exit, every problem listed, no panic.
if out=$(env -i "$bin" 2>&1); then echo "smoke: started without configuration"; exit 1; fi
for var in OIDC_ISSUER_URL OIDC_CLIENT_ID OIDC_CLIENT_SECRET OIDC_REDIRECT_URL COOKIE_SECRET; do
  grep -q "$var" <<<"$out" || { echo "smoke: $var not reported: $out"; exit 1; }
done
! grep -qi "panicked" <<<"$out" || { echo "smoke: panic: $out"; exit 1; }

# Serving: the IdP is unreachable (discovery retries in the background) but /healthz answers.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
idp_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export LISTEN_ADDR="127.0.0.1:$port" OIDC_ISSUER_URL="http://127.0.0.1:$idp_port" \
  OIDC_CLIENT_ID=smoke OIDC_CLIENT_SECRET=smoke OIDC_REDIRECT_URL="http://127.0.0.1:$port/oauth2/callback" \
  COOKIE_SECRET=smoke-cookie-secret-0123456789abcdef COOKIE_SECURE=false RUST_LOG=warn
"$bin" > /tmp/portcullis-smoke.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  if "$bin" healthcheck 2>/dev/null; then
    echo "smoke: static binary $("$bin" --version) serves and passes its healthcheck"
    exit 0
  fi
  sleep 0.2
done
echo "smoke: healthcheck never passed"; cat /tmp/portcullis-smoke.log; exit 1
