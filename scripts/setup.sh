#!/usr/bin/env bash
# Prepares a Debian machine to build envparity and run its end-to-end tests.
#
# Idempotent: installs only the Debian packages that are missing (one
# `apt-get update` + `apt-get install` when there are any), then checks that
# every tool the tests execute is where they expect it. Run as root.
# Rust is not installed here: cargo must already be on PATH.
#
#   scripts/setup.sh
set -euo pipefail

# Package -> why the project needs it.
packages=(
  docker.io        # dockerd + client (+ containerd, ctr, runc): the e2e test hosts and the scratch containerd (CRI) nodes
  podman           # a scratch Podman service (Docker-compatible API) in the runtimes e2e tests
  conmon           # Podman's container monitor
  catatonit        # Podman's init
  golang-github-containers-common  # Podman's default configuration files
  docker-registry  # registry:2 as a plain process: images shared between hosts
  busybox-static   # the only binary inside the test images
  prometheus-alertmanager  # a real Alertmanager for the alerting e2e tests
  prometheus       # a real Prometheus (+ promtool) scraping /metrics in the e2e tests
  ca-certificates  # cargo fetching from crates.io
  gcc              # C compiler for rusqlite's bundled SQLite (and other -sys crates)
  g++              # libFuzzer (C++), built with the fuzz targets that CI type-checks
  libc6-dev        # headers and crt files for gcc
  make
  pkg-config
  tar              # packs test image root file systems
  procps           # pgrep, used by scripts/lib/fleet.sh and the leftover check
  util-linux       # umount, used by scripts/lib/fleet.sh
  yamllint         # tests/deploy/check.sh: every YAML file in deploy/
  systemd          # systemd-analyze verify/security on deploy/systemd/*.service
  docker-compose   # `docker-compose config` validates deploy/compose/compose.yaml
  python3-venv     # the venv holding kubernetes-validate and Helm's SDK (below)
  haproxy          # a read-only Docker socket proxy in the security e2e tests; the CRI allowlist (e2e, tests/deploy/check.sh)
  curl             # tests/deploy/check.sh: a gRPC call over HTTP/2 to the rendered CRI allowlist
  prometheus-node-exporter  # the minimal host agent the benchmarks compare against (scripts/bench.sh)
  chromium         # headless browser for the web view's e2e tests (docs/web.md)
  chromium-driver  # chromedriver: the WebDriver server the e2e harness drives chromium with
  libnss3-tools    # certutil, pk12util: each test browser's own NSS database trusting the fleet CA (tests/src/nssdb.rs)
  postgresql-15    # PostgreSQL 15 (initdb, postgres, pg_ctl): the store tests' second backend, started per run in a temp dir (tests/src/postgres.rs)
  openssl          # checks axe-core's integrity (below)
  npm              # fetches axe-core (pinned by version and integrity, below) for the browser tests
)

# Tool -> the absolute path the tests and scripts execute.
tools=(
  /usr/sbin/dockerd
  /usr/bin/docker
  /usr/bin/containerd
  /usr/bin/ctr
  /usr/bin/runc
  /usr/bin/podman
  /usr/bin/docker-registry
  /usr/lib/postgresql/15/bin/initdb
  /usr/lib/postgresql/15/bin/pg_ctl
  /bin/busybox
  /bin/tar
  /usr/bin/prometheus-alertmanager
  /usr/bin/prometheus
  /usr/bin/promtool
  /usr/bin/yamllint
  /usr/bin/systemd-analyze
  /usr/bin/docker-compose
  /usr/sbin/haproxy
  /usr/bin/curl
  /usr/bin/prometheus-node-exporter
  /usr/bin/chromium
  /usr/bin/chromedriver
  /usr/bin/certutil
  /usr/bin/pk12util
  /usr/bin/openssl
)

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" == 0 ]] || die "run as root (it installs Debian packages): sudo $0"
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian (and derivatives) only"
command -v cargo >/dev/null \
  || die "cargo not found on PATH: install the Rust toolchain (rustup) first; this script does not install Rust"

installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

# A package another source already provides: Node.js from NodeSource (as on
# this project's machines) ships npm inside its `nodejs` package, which
# conflicts with Debian's `npm`; any npm on PATH will do.
provided() {
  case "$1" in
    npm) command -v npm >/dev/null ;;
    *) return 1 ;;
  esac
}

missing=()
for pkg in "${packages[@]}"; do
  installed "$pkg" || provided "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  say "all ${#packages[@]} packages already installed: ${packages[*]}"
else
  say "installing ${#missing[@]} missing package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  say "installed: ${missing[*]}"
fi

for tool in "${tools[@]}"; do
  [[ -x "$tool" ]] || die "$tool is missing after installing packages; check the apt output above"
done
command -v npm >/dev/null || die "npm is missing after installing packages; check the apt output above"

# `kubectl kustomize` renders deploy/kubernetes offline. Any kubectl will do
# (some machine images ship a newer one from another source); without one,
# Debian's kubernetes-client provides it.
if ! command -v kubectl >/dev/null; then
  say "installing kubernetes-client (kubectl, for kubectl kustomize)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client
fi

# tests/deploy/check.sh's Python tools from PyPI (kubernetes-validate: the
# Kubernetes API schemas, offline; helm-python-sdk: Helm's Go SDK as a library,
# as no reachable registry ships the helm binary), pinned with hashes, in a venv
# of their own; rebuilt only when the requirements change.
deploy_requirements=$(dirname "$0")/../tests/deploy/requirements.txt
deploy_venv=${ENVPARITY_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/envparity/deploy-venv}
deploy_want=$(sha256sum <"$deploy_requirements" | cut -d' ' -f1)
if [[ ! -x "$deploy_venv/bin/python" || "$(cat "$deploy_venv/.requirements.sha256" 2>/dev/null)" != "$deploy_want" ]]; then
  say "creating $deploy_venv from tests/deploy/requirements.txt"
  rm -rf "$deploy_venv"
  /usr/bin/python3 -m venv "$deploy_venv"
  "$deploy_venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps \
    -r "$deploy_requirements"
  echo "$deploy_want" >"$deploy_venv/.requirements.sha256"
fi

# axe-core, the accessibility checker the web view's browser tests run in
# each page (tests/src/browser.rs), from the npm registry, pinned by version
# and by the registry's sha512 integrity; unpacked once into the cache.
axe_version=4.10.3
axe_integrity='sha512-Xm7bpRXnDSX2YE2YFfBk2FnF0ep6tmG7xPh8iHee8MIcrgq762Nkce856dYtJYLkuIoYZvGfTs/PbZhideTcEg=='
axe_dir=${ENVPARITY_AXE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/envparity/axe-core-$axe_version}
if [[ ! -f "$axe_dir/axe.min.js" ]]; then
  say "fetching axe-core $axe_version into $axe_dir"
  axe_tmp=$(mktemp -d)
  (cd "$axe_tmp" && npm pack --silent "axe-core@$axe_version" >/dev/null)
  axe_got="sha512-$(openssl dgst -sha512 -binary "$axe_tmp/axe-core-$axe_version.tgz" | base64 -w0)"
  [[ "$axe_got" == "$axe_integrity" ]] || die "axe-core $axe_version: integrity $axe_got, expected $axe_integrity"
  mkdir -p "$axe_dir"
  tar -xzf "$axe_tmp/axe-core-$axe_version.tgz" -C "$axe_dir" --strip-components=1 package/axe.min.js
  rm -rf "$axe_tmp"
fi

say "cargo: $(cargo --version)"
say "dockerd: $(/usr/sbin/dockerd --version)"
say "docker-registry: $(/usr/bin/docker-registry --version 2>&1 | head -n 1)"
say "containerd: $(/usr/bin/containerd --version)"
say "podman: $(/usr/bin/podman --version)"
say "ready"
