# shellcheck shell=bash
# A throwaway fleet for demos and scripts: isolated dockerd hosts, a local
# registry and busybox images, all under one temp dir, all stopped by pid on
# exit. The bash twin of the Rust harness in tests/ (same daemon flags, same
# tear-down order). Source it, as root:
#
#   . scripts/lib/fleet.sh
#   fleet_start_registry                       # sets FLEET_REGISTRY=127.0.0.1:PORT
#   fleet_start_host staging
#   fleet_start_host production
#   fleet_make_image staging myapp:1 1.0.0     # busybox + /app/version, no network
#   fleet_push staging myapp:1                 # prints 127.0.0.1:PORT/myapp@sha256:…
#   fleet_pull production myapp:1
#   fleet_docker production run -d --network none --name shop "$FLEET_REGISTRY/myapp:1"
#   envparity-agent --docker-host "$(fleet_docker_host production)" …
#
# The first fleet_start_* creates FLEET_DIR and installs fleet_stop_all as the
# EXIT trap (INT and TERM exit through it too), so nothing outlives the script.

FLEET_DOCKERD=${FLEET_DOCKERD:-/usr/sbin/dockerd}
FLEET_DOCKER=${FLEET_DOCKER:-/usr/bin/docker}
FLEET_REGISTRY_BIN=${FLEET_REGISTRY_BIN:-/usr/bin/docker-registry}
FLEET_BUSYBOX=${FLEET_BUSYBOX:-/bin/busybox}
FLEET_DIR=${FLEET_DIR:-}
FLEET_REGISTRY=${FLEET_REGISTRY:-}
FLEET_HOSTS=()

_fleet_say() { printf 'fleet: %s\n' "$*" >&2; }
_fleet_die() { printf 'fleet: error: %s\n' "$*" >&2; return 1; }

# Creates FLEET_DIR and installs the EXIT trap, once.
fleet_init() {
  [[ -n "$FLEET_DIR" && -d "$FLEET_DIR" ]] && return 0
  [[ "$(id -u)" == 0 ]] || { _fleet_die "dockerd needs root"; return 1; }
  local tool
  for tool in "$FLEET_DOCKERD" "$FLEET_DOCKER" "$FLEET_REGISTRY_BIN" "$FLEET_BUSYBOX"; do
    [[ -x "$tool" ]] || { _fleet_die "$tool not found: run scripts/setup.sh as root first"; return 1; }
  done
  FLEET_DIR=$(mktemp -d "${TMPDIR:-/tmp}/envparity-fleet.XXXXXX")
  FLEET_DIR=$(cd "$FLEET_DIR" && pwd -P)
  mkdir -p "$FLEET_DIR/hosts" "$FLEET_DIR/images"
  trap fleet_stop_all EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  _fleet_say "dir $FLEET_DIR"
}

# Waits until "$@" succeeds, polling, for at most $1 seconds; $2 says what for.
_fleet_wait() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      _fleet_die "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.05
  done
}

# The engine address of host NAME, as DOCKER_HOST spells it.
fleet_docker_host() {
  [[ -S "$FLEET_DIR/hosts/$1/docker.sock" ]] || { _fleet_die "no host $1 is running"; return 1; }
  printf 'unix://%s/hosts/%s/docker.sock\n' "$FLEET_DIR" "$1"
}

# fleet_docker NAME ARGS…: the docker client aimed at host NAME only.
fleet_docker() {
  local name=$1
  shift
  local address
  address=$(fleet_docker_host "$name") || return 1
  env -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH \
    DOCKER_HOST="$address" DOCKER_CONFIG="$FLEET_DIR/hosts/$name/client" "$FLEET_DOCKER" "$@"
}

# fleet_start_host NAME: an isolated dockerd (vfs, no networking), ready on return.
fleet_start_host() {
  local name=${1:?usage: fleet_start_host NAME}
  fleet_init || return 1
  local dir="$FLEET_DIR/hosts/$name"
  [[ -e "$dir" ]] && { _fleet_die "host $name already exists"; return 1; }
  mkdir -p "$dir/client" "$dir/tmp"
  echo '{}' >"$dir/daemon.json"
  # TMPDIR: the daemons' temp files (containerd dumps stacks when dockerd dies) stay in $dir.
  TMPDIR="$dir/tmp" "$FLEET_DOCKERD" --config-file "$dir/daemon.json" --data-root "$dir/data" --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" --host "unix://$dir/docker.sock" \
    --storage-driver=vfs --iptables=false --bridge=none --ip-masq=false \
    </dev/null >"$dir/dockerd.log" 2>&1 &
  echo $! >"$dir/pid"
  FLEET_HOSTS+=("$name")
  if ! _fleet_wait 30 "dockerd $name on $dir/docker.sock" fleet_docker "$name" version; then
    tail -n 20 "$dir/dockerd.log" >&2
    return 1
  fi
  _fleet_say "host $name: dockerd pid $(<"$dir/pid"), DOCKER_HOST=unix://$dir/docker.sock"
}

# True if something accepts connections on 127.0.0.1:$1.
_fleet_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True if GET http://127.0.0.1:$1$2 answers 200.
_fleet_http_ok() {
  local status
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$2" >&3
  IFS= read -r -t 2 status <&3 || status=
  exec 3<&-
  [[ "$status" == *" 200 "* ]]
}

# fleet_start_registry: a registry on a free loopback port; sets FLEET_REGISTRY.
fleet_start_registry() {
  fleet_init || return 1
  local dir="$FLEET_DIR/registry" port _attempt
  mkdir -p "$dir/storage"
  for _attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 20000))
    _fleet_port_open "$port" && continue
    printf 'version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
      "$dir/storage" "$port" >"$dir/config.yml"
    "$FLEET_REGISTRY_BIN" serve "$dir/config.yml" </dev/null >>"$dir/registry.log" 2>&1 &
    echo $! >"$dir/pid"
    if _fleet_wait 30 "docker-registry on 127.0.0.1:$port" _fleet_registry_up "$port"; then
      FLEET_REGISTRY="127.0.0.1:$port"
      _fleet_say "registry $FLEET_REGISTRY: pid $(<"$dir/pid")"
      return 0
    fi
    # Lost the port to someone else (or failed): stop this one and try another.
    kill "$(<"$dir/pid")" 2>/dev/null || true
  done
  tail -n 20 "$dir/registry.log" >&2
  _fleet_die "docker-registry did not start (log: $dir/registry.log)"
}

_fleet_registry_up() {
  kill -0 "$(<"$FLEET_DIR/registry/pid")" 2>/dev/null || return 1
  _fleet_http_ok "$1" /v2/
}

# fleet_make_image HOST TAG VERSION: a busybox image with /app/version holding
# VERSION, APP_VERSION=VERSION baked in and the OCI label
# org.opencontainers.image.version=VERSION; prints the image id. Same VERSION,
# same layer; another VERSION, another digest.
fleet_make_image() (
  set -euo pipefail
  local host=${1:?usage: fleet_make_image HOST TAG VERSION} tag=${2:?TAG} version=${3:?VERSION}
  local build
  build=$(mktemp -d "$FLEET_DIR/images/build.XXXXXX")
  mkdir -p "$build/rootfs/bin" "$build/rootfs/app"
  cp "$FLEET_BUSYBOX" "$build/rootfs/bin/busybox"
  local applet
  for applet in sh sleep cat env printenv echo ls true false; do
    ln -s busybox "$build/rootfs/bin/$applet"
  done
  printf '%s\n' "$version" >"$build/rootfs/app/version"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$build/rootfs" -cf "$build/root.tar" .
  fleet_docker "$host" import \
    --change "ENV APP_VERSION=\"$version\"" \
    --change "LABEL org.opencontainers.image.version=\"$version\"" \
    --change 'CMD ["/bin/sh","-c","trap '\''exit 0'\'' TERM; sleep 3600 & wait"]' \
    "$build/root.tar" "$tag"
  rm -rf "$build"
)

# fleet_push HOST TAG: pushes TAG to the registry; prints the repo digest.
fleet_push() {
  local host=${1:?usage: fleet_push HOST TAG} tag=${2:?TAG}
  [[ -n "$FLEET_REGISTRY" ]] || { _fleet_die "no registry: call fleet_start_registry first"; return 1; }
  fleet_docker "$host" tag "$tag" "$FLEET_REGISTRY/$tag" &&
    fleet_docker "$host" push --quiet "$FLEET_REGISTRY/$tag" >/dev/null &&
    fleet_repo_digest "$host" "$tag"
}

# fleet_pull HOST TAG: pulls TAG from the registry (as $FLEET_REGISTRY/TAG);
# prints the repo digest.
fleet_pull() {
  local host=${1:?usage: fleet_pull HOST TAG} tag=${2:?TAG}
  [[ -n "$FLEET_REGISTRY" ]] || { _fleet_die "no registry: call fleet_start_registry first"; return 1; }
  fleet_docker "$host" pull --quiet "$FLEET_REGISTRY/$tag" >/dev/null && fleet_repo_digest "$host" "$tag"
}

# fleet_repo_digest HOST TAG: the registry repo digest HOST records for TAG.
fleet_repo_digest() {
  local host=$1 tag=$2
  fleet_docker "$host" image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$FLEET_REGISTRY/$tag" |
    grep -m1 "^$FLEET_REGISTRY/${tag%:*}@"
}

# Pids whose command line mentions DIR, plus all their descendants (container
# processes descend from shims whose command line names the exec root).
_fleet_pids_under() {
  # The dir goes in through the environment: as an argument, awk would match itself.
  ps -eo pid=,ppid=,args= | FLEET_MATCH=$1 FLEET_SELF=$$ awk '
    { pid[NR] = $1; parent[NR] = $2; $1 = ""; $2 = ""; line[NR] = $0 }
    END {
      dir = ENVIRON["FLEET_MATCH"]; me = ENVIRON["FLEET_SELF"]
      for (i = 1; i <= NR; i++) if (index(line[i], dir) && pid[i] != me) ours[pid[i]] = 1
      do {
        grew = 0
        for (i = 1; i <= NR; i++) if ((parent[i] in ours) && !(pid[i] in ours)) { ours[pid[i]] = 1; grew = 1 }
      } while (grew)
      for (p in ours) print p
    }'
}

# Waits up to $1 seconds for pids $2… to exit.
_fleet_wait_gone() {
  local timeout=$1
  shift
  local deadline=$((SECONDS + timeout)) pid alive
  while :; do
    alive=0
    for pid in "$@"; do
      # Zombies (state Z) count as gone: their parent may never reap them.
      if kill -0 "$pid" 2>/dev/null && [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]]; then alive=1; fi
    done
    ((alive == 0)) && return 0
    ((SECONDS >= deadline)) && return 1
    sleep 0.05
  done
}

# fleet_stop_all: removes containers, stops every dockerd (and its containerd)
# and the registry by pid, kills anything else under FLEET_DIR, unmounts what
# is mounted there (deepest first, lazily if busy) and deletes FLEET_DIR.
# Safe to call twice; installed as the EXIT trap.
fleet_stop_all() {
  local status=$?
  [[ -n "$FLEET_DIR" && -d "$FLEET_DIR" ]] || return "$status"
  local name dir ids pids=() all=() mount
  mapfile -t all < <(_fleet_pids_under "$FLEET_DIR")
  for name in "${FLEET_HOSTS[@]}"; do
    ids=$(fleet_docker "$name" ps -aq 2>/dev/null) || continue
    # shellcheck disable=SC2086  # one id per word
    [[ -n "$ids" ]] && fleet_docker "$name" rm -f $ids >/dev/null 2>&1
  done
  # SIGTERM to every dockerd, containerd and the registry at once.
  for dir in "$FLEET_DIR"/hosts/* "$FLEET_DIR/registry"; do
    [[ -f "$dir/pid" ]] && pids+=("$(<"$dir/pid")")
  done
  mapfile -t -O "${#pids[@]}" pids < <(_fleet_pids_under "$FLEET_DIR")
  all+=("${pids[@]}")
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    if ! _fleet_wait_gone 10 "${pids[@]}"; then
      kill -KILL "${pids[@]}" 2>/dev/null || true
      _fleet_wait_gone 5 "${pids[@]}" || true
    fi
  fi
  # Stragglers (orphaned shims, containers of a crashed dockerd).
  mapfile -t pids < <(_fleet_pids_under "$FLEET_DIR")
  all+=("${pids[@]}")
  if ((${#pids[@]})); then
    kill -KILL "${pids[@]}" 2>/dev/null || true
    _fleet_wait_gone 5 "${pids[@]}" || true
  fi
  # Orphans killed above are re-parented to init, which reaps on its own time;
  # give it a moment so they do not linger in `pgrep` as zombies.
  # (`kill -0` succeeds while any of them, zombie or not, still exists.)
  if ((${#all[@]})); then
    local deadline=$((SECONDS + 3))
    while ((SECONDS < deadline)) && kill -0 "${all[@]}" 2>/dev/null; do sleep 0.1; done
  fi
  # Mount points under FLEET_DIR, deepest first (mountinfo escapes spaces as \040).
  while IFS= read -r mount; do
    umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true
  done < <(awk -v dir="$FLEET_DIR" 'index($5, dir) == 1 { print gsub("/", "/", $5) " " $5 }' /proc/self/mountinfo |
    sort -rn | cut -d' ' -f2- | sed 's/\\040/ /g')
  rm -rf "$FLEET_DIR"
  _fleet_say "stopped; removed $FLEET_DIR"
  FLEET_DIR=
  FLEET_HOSTS=()
  FLEET_REGISTRY=
  return "$status"
}
