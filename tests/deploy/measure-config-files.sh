#!/usr/bin/env bash
# What reading mounted configuration files (issue 20) costs the agent on a
# real dockerd, against the same agent not reading them, in one run. As root:
#
#   cargo build --profile release-agent --locked -p envparity-agent   # as shipped
#   cargo build --locked -p envparity-aggregator                      # or --release
#   tests/deploy/measure-config-files.sh [--containers 100] [--files 5] [--kib 20] \
#       [--keys 100] [--seconds 90] [--collect-seconds 30] [--collections 3] \
#       [--rounds 2] [--json FILE] [--before AGENT_BIN]
#
# One sandboxed dockerd (scripts/lib/fleet.sh) runs CONTAINERS busybox
# containers, each bind-mounting FILES YAML files of KIB KiB (KEYS keys,
# each with a comment line, padded to size) at /etc/app/fN.yaml; every
# container has its own files. An aggregator runs on loopback with mutual
# TLS. Then, ROUNDS times, the agent runs in each mode in turn (off, on,
# off, on, …), so both see the same load:
#   off  --config-file-max-files 0: no file is read (the baseline);
#   on   the defaults: every file read, flattened and fingerprinted.
# With --before AGENT_BIN (another build of the agent, e.g. of the commit
# before a change), a third mode between them:
#   before  that binary, with the defaults;
# so that before and after are measured in the same run (off, before, on, …).
# For each, two agent runs:
#   1. idle, with the default intervals (heartbeat 15 s, resync 60 s): once
#      the aggregator shows every container (and, on, every file's keys) and
#      the agent's own first collection has ended (a window of a multiple of
#      60 s then holds the same number of resyncs whatever its phase),
#      VmRSS every second for SECONDS, VmHWM, and CPU time from
#      /proc/PID/stat over the window;
#   2. --resync-interval 2s (a full collection every 2 s): once the agent's
#      first collection (every file read) has ended, over at least
#      COLLECTIONS collections (or COLLECT_SECONDS, whichever is longer), the
#      mean wall time of a collection from the agent's
#      envparity_agent_collection_duration_seconds (sum/count), and the CPU
#      time the agent and dockerd spent per collection (/proc/PID/stat), with
#      the files unchanged; then (on only) the same while every file is
#      rewritten in place once a second (one value changes; same size, new
#      mtime), so that every collection finds all of them changed and reads,
#      flattens and fingerprints them again.
# Before the agent runs, the engine's own cost per file, the baseline of what
# the agent asks of it: the median of 20 HEAD and 20 GET
# /containers/app-1/archive?path=/etc/app/f1.yaml with curl on the socket.
# Prints one line per measurement and, with --json FILE, appends one JSON
# object per mode and round. The load average is recorded beside each.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd -P)

containers=100
files=5
kib=20
keys=100
seconds=90
collect_seconds=30
collections_min=3
rounds=2
json=
before_bin=
while (($#)); do
  case $1 in
    --containers) containers=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    --kib) kib=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --collect-seconds) collect_seconds=$2; shift 2 ;;
    --collections) collections_min=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --before) before_bin=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "measure: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

target=${CARGO_TARGET_DIR:-$root/target}
agent_bin=${ENVPARITY_AGENT_BIN:-$target/release-agent/envparity-agent}
server_bin=${ENVPARITY_BIN:-$target/release/envparity}
[[ -x "$server_bin" ]] || server_bin=$target/debug/envparity
for bin in "$agent_bin" "$server_bin" ${before_bin:+"$before_bin"}; do
  [[ -x "$bin" ]] || { echo "measure: $bin missing: build it first (see --help)" >&2; exit 1; }
done

# shellcheck source=SCRIPTDIR/../../scripts/lib/fleet.sh
. scripts/lib/fleet.sh
fleet_init
pids=()
agent=
measure_stop() {
  local status=$?
  [[ -n "$agent" ]] && pids+=("$agent")
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  fleet_stop_all
  exit "$status"
}
trap measure_stop EXIT

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    _fleet_port_open "$p" || { echo "$p"; return; }
  done
}
pct() {
  local file=$1 p=$2 n
  n=$(wc -l <"$file")
  ((n > 0)) || { echo "-"; return; }
  sort -n "$file" | sed -n "$(((n * p + 99) / 100))p"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { local s; read -r -a s <"/proc/$1/stat"; echo $((s[13] + s[14])); }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# The files: one directory per container; rewrite ROUND changes the value
# of `revision` in place (same size, same inode, so the bind mount sees it).
config=$FLEET_DIR/config
python3 - "$config" "$containers" "$files" "$kib" "$keys" <<'EOF'
import os, sys
root, containers, files, kib, keys = sys.argv[1], *map(int, sys.argv[2:])
for c in range(1, containers + 1):
    os.makedirs(f"{root}/c{c}", exist_ok=True)
    for f in range(1, files + 1):
        lines = ["revision: 000000"]
        for k in range(keys):
            lines.append(f"# setting {k} of file {f}: what it does, who owns it, when to change it")
            lines.append(f"section{k % 10}_key{k}: value-{c}-{f}-{k}-" + "x" * 24)
        text = "\n".join(lines) + "\n"
        pad = kib * 1024 - len(text)
        if pad > 0:
            text += "#" + "-" * (pad - 2) + "\n"
        with open(f"{root}/c{c}/f{f}.yaml", "w") as out:
            out.write(text)
EOF
rewrite() {
  python3 - "$config" "$1" <<'EOF'
import glob, sys
root, n = sys.argv[1], int(sys.argv[2])
for path in glob.glob(f"{root}/c*/f*.yaml"):
    with open(path, "r+b") as f:
        f.write(b"revision: %06d" % n)
EOF
}
bytes=$(du -sb "$config" | cut -f1)
echo "config files: $containers containers x $files files, $(find "$config" -name '*.yaml' | wc -l) files, $bytes bytes, $keys keys each"

fleet_start_host prod >/dev/null
fleet_make_image prod app:1 1.0.0 >/dev/null
for c in $(seq 1 "$containers"); do
  mounts=()
  for f in $(seq 1 "$files"); do
    mounts+=(--volume "$config/c$c/f$f.yaml:/etc/app/f$f.yaml:ro")
  done
  fleet_docker prod run -d --network none --name "app-$c" --label envparity.service="svc-$((c % 10))" \
    -e LOG_LEVEL=info -e DB_PASSWORD="pw-$c" "${mounts[@]}" app:1 >/dev/null
done
echo "started $containers containers (load $(load))"
dockerd_pid=$(<"$FLEET_DIR/hosts/prod/pid")

# The engine's own cost for one file: HEAD (stat) and GET (tar) of the
# archive API, as the agent asks them, timed with curl.
engine_ms() {
  local method=$1 out=$FLEET_DIR/engine-$1 k
  : >"$out"
  for k in $(seq 1 20); do
    curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$FLEET_DIR/hosts/prod/docker.sock" \
      "${@:2}" "http://docker/containers/app-1/archive?path=/etc/app/f1.yaml" |
      awk '{ printf "%.1f\n", 1000 * $1 }' >>"$out"
  done
  pct "$out" 50
}
load_engine=$(load)
engine_head=$(engine_ms head --head)
engine_get=$(engine_ms get)
echo "engine alone, one file: HEAD median $engine_head ms, GET median $engine_get ms (20 each, load $load_engine)"

port=$(free_port)
head -c 32 /dev/urandom >"$FLEET_DIR/fleet.key"
chmod 600 "$FLEET_DIR/fleet.key"
pki=$FLEET_DIR/pki
"$server_bin" certs --dir "$pki" --server-name 127.0.0.1 --agent measure-1 --client measure >/dev/null
export ENVPARITY_SERVER=https://127.0.0.1:$port ENVPARITY_TLS_CA=$pki/ca.pem \
  ENVPARITY_QUERY_TLS_CERT=$pki/client-measure.pem ENVPARITY_QUERY_TLS_KEY=$pki/client-measure-key.pem
cli() { "$server_bin" "$@"; }
"$server_bin" serve --listen "127.0.0.1:$port" --data-dir "$FLEET_DIR/data" \
  --tls-cert "$pki/server.pem" --tls-key "$pki/server-key.pem" --tls-client-ca "$pki/ca.pem" \
  >"$FLEET_DIR/serve.log" 2>&1 &
pids+=($!)
_fleet_wait 60 "the aggregator on port $port" cli hosts

metrics_port=$(free_port)
agent_args=(--aggregator "https://127.0.0.1:$port" --environment production --host-id measure-1
  --tls-ca "$pki/ca.pem" --tls-cert "$pki/agent-measure-1.pem" --tls-key "$pki/agent-measure-1-key.pem"
  --docker-host "$(fleet_docker_host prod)" --fingerprint-key-file "$FLEET_DIR/fleet.key"
  --clear-env LOG_LEVEL --metrics-listen "127.0.0.1:$metrics_port")

shows_count() { cli hosts -o json 2>/dev/null | grep -q "\"container_count\": *$1[,}]"; }
# The aggregator holds the last file's keys of the last container.
shows_files() { cli service "svc-$((containers % 10))" -o json 2>/dev/null | grep -q "section9_key$((keys - 1))"; }
# "SUM COUNT" of the agent's collection histogram.
collections() {
  exec 3<>"/dev/tcp/127.0.0.1/$metrics_port"
  printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  awk '/^envparity_agent_collection_duration_seconds_sum/ {s=$2} /^envparity_agent_collection_duration_seconds_count/ {c=$2} END {print s, c}' <&3
  exec 3<&-
}
first_collection_done() {
  local c
  read -r -a c < <(collections)
  awk -v n="${c[1]:-0}" 'BEGIN { exit !(n >= 1) }'
}
start_agent() {
  "$bin" "${agent_args[@]}" "$@" 2>>"$FLEET_DIR/agent.log" &
  agent=$!
  _fleet_wait 120 "the agent's metrics" _fleet_http_ok "$metrics_port" /metrics
}
stop_agent() {
  kill -TERM "$agent"
  wait "$agent" 2>/dev/null || true
  agent=
}
# per_collection: over at least COLLECT_SECONDS and COLLECTIONS_MIN
# collections (at most 600 s), "WALL_MS N AGENT_CPU_MS DOCKERD_CPU_MS", each
# a mean per collection.
per_collection() {
  local a b t0 c0 d0 start=$SECONDS
  read -r -a a < <(collections)
  t0=$(cpu_ticks "$agent")
  d0=$(cpu_ticks "$dockerd_pid")
  while :; do
    sleep 1
    read -r -a b < <(collections)
    if ((SECONDS - start >= collect_seconds)) &&
      awk -v c0="${a[1]}" -v c1="${b[1]}" -v m="$collections_min" 'BEGIN { exit !(c1 - c0 >= m) }'; then
      break
    fi
    ((SECONDS - start < 600)) || break
  done
  awk -v s0="${a[0]}" -v c0="${a[1]}" -v s1="${b[0]}" -v c1="${b[1]}" -v hz="$clk" \
    -v t=$(($(cpu_ticks "$agent") - t0)) -v d=$(($(cpu_ticks "$dockerd_pid") - d0)) \
    'BEGIN { n = c1 - c0; if (n > 0) printf "%.1f %d %.1f %.1f\n", 1000 * (s1 - s0) / n, n, 1000 * t / hz / n, 1000 * d / hz / n; else print "null 0 null null" }'
}

revision=0
clk=$(getconf CLK_TCK)
for round in $(seq 1 "$rounds"); do
  for mode in off ${before_bin:+before} on; do
    reading=()
    [[ $mode == off ]] && reading=(--config-file-max-files 0)
    bin=$agent_bin
    [[ $mode == before ]] && bin=$before_bin

    # 1. idle, default intervals
    start_agent "${reading[@]}"
    _fleet_wait 300 "the aggregator to show $containers containers" shows_count "$containers"
    [[ $mode != off ]] && _fleet_wait 300 "the aggregator to hold the files' keys" shows_files
    # Those may be the previous agent's: wait for this one's first
    # collection (every file read), which is no part of being idle.
    _fleet_wait 300 "the agent's first collection" first_collection_done
    sleep 5
    samples=$FLEET_DIR/rss-$mode-$round
    : >"$samples"
    load_idle=$(load)
    cpu0=$(cpu_ticks "$agent")
    start=$SECONDS
    while ((SECONDS - start < seconds)); do
      rss_kib "$agent" >>"$samples"
      sleep 1
    done
    cpu1=$(cpu_ticks "$agent")
    hwm=$(hwm_kib "$agent")
    millicores=$(awk -v t=$((cpu1 - cpu0)) -v hz="$clk" -v s="$seconds" 'BEGIN { printf "%.2f", 1000 * t / hz / s }')
    stop_agent
    echo "round $round, files $mode: idle ${seconds}s: RSS median $(pct "$samples" 50) KiB, peak (VmHWM) $hwm KiB, CPU $millicores millicores (load $load_idle)"

    # 2. a full collection every 2 s
    start_agent "${reading[@]}" --resync-interval 2s
    _fleet_wait 300 "the aggregator to show $containers containers" shows_count "$containers"
    # The aggregator still shows the previous agent's containers: wait for
    # this agent's own first collection (every file read, none cached) to
    # end, so that the window holds only collections with files unchanged.
    _fleet_wait 300 "the agent's first collection" first_collection_done
    sleep 5
    load_same=$(load)
    read -r same_ms same_n same_cpu same_dockerd < <(per_collection)
    echo "round $round, files $mode: collection, files unchanged: $same_ms ms mean of $same_n; CPU per collection: agent $same_cpu ms, dockerd $same_dockerd ms (load $load_same)"
    changed_ms=null
    changed_n=0
    changed_cpu=null
    changed_dockerd=null
    load_changed=
    if [[ $mode != off ]]; then
      load_changed=$(load)
      (
        while :; do
          revision=$((revision + 1))
          rewrite "$revision"
          sleep 1
        done
      ) &
      writer=$!
      read -r changed_ms changed_n changed_cpu changed_dockerd < <(per_collection)
      kill "$writer"
      wait "$writer" 2>/dev/null || true
      revision=$((revision + 1000))
      echo "round $round, files $mode: collection, every file changed: $changed_ms ms mean of $changed_n; CPU per collection: agent $changed_cpu ms, dockerd $changed_dockerd ms (load $load_changed)"
    fi
    # The reader's own counts, where the build has them.
    exec 3<>"/dev/tcp/127.0.0.1/$metrics_port"
    printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
    grep -E '^envparity_agent_config_file' <&3 | sed "s/^/round $round, files $mode: /" || true
    exec 3<&-
    stop_agent
    if [[ -n "$json" ]]; then
      printf '{"round": %s, "files": "%s", "containers": %s, "files_per_container": %s, "kib": %s, "keys": %s, "engine_one_file": {"head_ms": %s, "get_ms": %s, "load": "%s"}, "idle": {"seconds": %s, "rss_kib_median": %s, "hwm_kib": %s, "millicores": %s, "load": "%s"}, "collection_unchanged": {"mean_ms": %s, "n": %s, "agent_cpu_ms": %s, "dockerd_cpu_ms": %s, "load": "%s"}, "collection_changed": {"mean_ms": %s, "n": %s, "agent_cpu_ms": %s, "dockerd_cpu_ms": %s, "load": "%s"}}\n' \
        "$round" "$mode" "$containers" "$files" "$kib" "$keys" "$engine_head" "$engine_get" "$load_engine" "$seconds" "$(pct "$samples" 50)" "$hwm" "$millicores" "$load_idle" \
        "$same_ms" "$same_n" "$same_cpu" "$same_dockerd" "$load_same" "$changed_ms" "$changed_n" "$changed_cpu" "$changed_dockerd" "$load_changed" >>"$json"
    fi
  done
done
if grep -E ' (WARN|ERROR) ' "$FLEET_DIR/agent.log" | head -n 5; then
  echo "(the agent logged the warnings above)"
fi
