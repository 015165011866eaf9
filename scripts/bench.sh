#!/usr/bin/env bash
# Runs every benchmark behind docs/benchmarks.md and prints its tables, from a
# built tree (it builds the release binaries it needs); as root for the agent
# part, which starts dockerd:
#
#   scripts/bench.sh [OUT_DIR]            # everything, 3 runs of each (hours on 2 cores, see below)
#   BENCH_RUNS=1 BENCH_PARTS=ingest scripts/bench.sh   # a part, once
#   BENCH_SCALES=100,1000 BENCH_PARTS=scale scripts/bench.sh
#
# Registering 10,000 simulated hosts takes about three minutes on 2 cores
# (docs/benchmarks.md); a whole 10,000-host scale run about five. Other
# knobs: BENCH_DURATION (closed-loop phases, 8s), BENCH_STEADY (20s),
# BENCH_TLS_HOSTS (100), BENCH_AGENT_SECONDS (90), BENCH_TRIALS (20).
#
# Parts (BENCH_PARTS, comma-separated; default all of them):
#   ingest  envparity-loadgen against the bare tonic echo server and against
#           `envparity serve`, 100 hosts × 50 containers, plain text and
#           mutual TLS: heartbeat and full-snapshot throughput, latencies,
#           server CPU per call; the ratio to the echo baseline; then one
#           changed container per snapshot sent as a delta (PushDelta)
#   scale   100 → 1,000 → 10,000 hosts × 50 containers, plain text: time to
#           register every host, snapshot throughput, then a steady fleet
#           (heartbeats every 15 s, 10 changed snapshots per second) while
#           `status` and `diff` run every second over gRPC and through the
#           CLI; aggregator CPU and RSS
#   engine  criterion benchmarks of the pure parity engine (cargo bench)
#   agent   tests/deploy/measure-agent.sh: the agent with 0, 10, 100
#           containers on a real dockerd, idle; docker run → aggregator and
#           → webhook alert; node_exporter's RSS beside it
#   agent-containerd
#           the same script with --runtime containerd: 100 pods on a scratch
#           containerd (CRI), idle; pod start → aggregator and → webhook
#           alert, BENCH_CRI_TRIALS (100) each; node_exporter beside it
#   attack  100 agents over mutual TLS in a steady fleet (heartbeats every
#           second, 5 changed snapshots per second, status and diff every
#           second), first alone, then while envparity-attack holds 2,000
#           idle unauthenticated TLS connections and 1,000 unfinished 16 MiB
#           report streams from 64 loopback addresses: the agents' latencies,
#           the aggregator's RSS, and every host still stored at the end
#   store   the scale run's load (BENCH_SCALES hosts, steady fleet) on
#           SQLite with one aggregator (then restarted on the same data: the
#           time until it listens again and its peak RSS, loading the
#           store), then on PostgreSQL (fsync on) with
#           BENCH_REPLICAS (3) replicas, the load on the one that serves:
#           throughput, latencies, the serving replica's CPU, every
#           replica's RSS, PostgreSQL's CPU and the database's size
#           (store.jsonl: in the steady phase alone too), then the time
#           from a SIGKILL of the serving replica to another one's /ready
#           and that replica's peak RSS (loading the store); the replicas'
#           lease lines in store-pg-N-RUN-lease.log. BENCH_VIA=standby
#           sends the load through a standby (the forwarding hop; its CPU
#           is entry_cpu_seconds). BENCH_STORES
#           (sqlite,postgres) picks the backends. Not in the default parts.
#   web     the web view at BENCH_WEB_HOSTS (10,000) simulated hosts with
#           ingest running: `envparity serve --web-listen` (plain text,
#           loopback) while the load generator registers the hosts, then
#           keeps a steady fleet (heartbeats every 15 s, 10 changed
#           snapshots a second, no gRPC queries) for BENCH_WEB_STEADY
#           (150s); meanwhile envparity-webbench loads the overview in
#           headless Chromium BENCH_WEB_SAMPLES (20) times with a cold cache
#           and as many with a warm one: first contentful paint, first byte,
#           bytes transferred (chromium and chromedriver: scripts/setup.sh)
#
# Results go to OUT_DIR (default ./bench-results/DATE) as JSON lines;
# scripts/bench-summary.py turns them into the tables of docs/benchmarks.md.
# The aggregator runs with its report rate limit raised (--report-rate and
# --report-burst 1000000): the load generator reports for each host far
# faster than an agent would.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)
out=${1:-$root/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
runs=${BENCH_RUNS:-3}
parts=${BENCH_PARTS:-ingest,scale,engine,agent,agent-containerd,attack,web}
scales=${BENCH_SCALES:-100,1000,10000}
stores=${BENCH_STORES:-sqlite,postgres}
duration=${BENCH_DURATION:-8s}
steady=${BENCH_STEADY:-20s}
tls_hosts=${BENCH_TLS_HOSTS:-100}
mkdir -p "$out"
out=$(cd "$out" && pwd -P)
bin=${CARGO_TARGET_DIR:-$root/target}/release
# The agent as shipped: its size-optimised profile (Cargo.toml).
agent_bin=${CARGO_TARGET_DIR:-$root/target}/release-agent/envparity-agent
say() { printf 'bench: %s\n' "$*" >&2; }
has() { [[ ",$parts," == *",$1,"* ]]; }

if { has agent || has agent-containerd; } && [[ "$(id -u)" != 0 ]]; then
  say "the agent parts start dockerd and containerd: run as root, or leave them out (BENCH_PARTS=ingest,scale,engine,attack)"
  exit 1
fi
say "building release binaries"
build=(-p envparity-aggregator -p envparity-tests --bin envparity --bin envparity-loadgen --bin envparity-attack
  --bin envparity-webbench)
cargo build --release --locked "${build[@]}" >&2
# ENVPARITY_AGENT_BIN measures another agent build (e.g. a release).
if [[ -z "${ENVPARITY_AGENT_BIN:-}" ]] && { has agent || has agent-containerd; }; then
  cargo build --profile release-agent --locked -p envparity-agent --bin envparity-agent >&2
fi
if has agent-containerd; then
  # The node it measures on (a test tool: a debug build does).
  cargo build --locked -p envparity-tests --bin envparity-cri-node >&2
fi

{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "nproc: $(nproc)"
  echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/machine.txt" >&2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/envparity-bench.XXXXXX")
server=
stop_server() {
  if [[ -n "$server" ]]; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
  fi
}
cleanup() {
  local status=$?
  stop_server
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# start_server NAME [TLS_DIR]: a fresh aggregator; sets server (pid) and url.
# Flags in the array server_extra are passed on.
server_extra=()
start_server() {
  local name=$1 pki=${2:-} port
  port=$(free_port)
  local args=(serve --listen "127.0.0.1:$port" --data-dir "$tmp/data-$name"
    --report-rate 1000000 --report-burst 1000000 "${server_extra[@]}")
  if [[ -n "$pki" ]]; then
    args+=(--tls-cert "$pki/server.pem" --tls-key "$pki/server-key.pem" --tls-client-ca "$pki/ca.pem")
    url=https://127.0.0.1:$port
  else
    args+=(--insecure-plaintext)
    url=http://127.0.0.1:$port
  fi
  rm -rf "$tmp/data-$name"
  "$bin/envparity" "${args[@]}" >"$tmp/serve-$name.log" 2>&1 &
  server=$!
  local i
  for i in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  say "the aggregator did not start:"
  tail -n 20 "$tmp/serve-$name.log" >&2
  return 1
}

loadgen() { "$bin/envparity-loadgen" --json "$out/loadgen.jsonl" "$@"; }

make_pki() {
  [[ -e "$tmp/pki/ca.pem" ]] && return 0
  local hosts=() i
  for i in $(seq 0 $((tls_hosts - 1))); do hosts+=("$(printf 'host-%05d' "$i")"); done
  "$bin/envparity" certs --dir "$tmp/pki" --server-name 127.0.0.1 --client loadgen "${hosts[@]/#/--agent=}" >/dev/null
}

if has ingest; then
  say "ingest: making a PKI for $tls_hosts hosts"
  t0=$EPOCHREALTIME
  make_pki
  echo "{\"certs\": $tls_hosts, \"seconds\": $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {print b - a}')}" >>"$out/certs.jsonl"
  for r in $(seq 1 "$runs"); do
    for tls in plain tls; do
      pki_args=()
      [[ $tls == tls ]] && pki_args=(--tls-dir "$tmp/pki")
      common=(--hosts "$tls_hosts" --phases "register,heartbeat,snapshot" --duration "$duration" "${pki_args[@]}")
      say "ingest run $r ($tls): echo baseline"
      loadgen --echo "${common[@]}" --label "ingest-$tls-echo/run$r"
      say "ingest run $r ($tls): aggregator"
      start_server "ingest-$tls-$r" "${pki_args[@]:1}"
      loadgen --server "$url" --server-pid "$server" "${common[@]}" --label "ingest-$tls-aggregator/run$r"
      stop_server
      say "ingest run $r ($tls): aggregator, changed snapshots sent as deltas"
      start_server "ingest-$tls-deltas-$r" "${pki_args[@]:1}"
      loadgen --server "$url" --server-pid "$server" --hosts "$tls_hosts" --phases register,snapshot \
        --duration "$duration" "${pki_args[@]}" --deltas --label "ingest-$tls-deltas/run$r"
      stop_server
    done
  done
fi

# Times `envparity ARGS…` every second, once the file AFTER exists, until
# the file STOP exists; one JSON line per call.
time_cli() {
  local label=$1 stop=$2 after=$3 what=$4
  shift 4
  while [[ ! -e "$after" && ! -e "$stop" ]]; do sleep 0.2; done
  while [[ ! -e "$stop" ]]; do
    local t0=$EPOCHREALTIME code=0
    "$bin/envparity" --server "$url" --insecure-plaintext "$@" >/dev/null 2>&1 || code=$?
    echo "{\"label\": \"$label\", \"command\": \"$what\", \"exit\": $code, \"ms\": $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", 1000 * (b - a)}')}" >>"$out/cli.jsonl"
    sleep 1
  done
}

if has scale; then
  IFS=, read -r -a scale_list <<<"$scales"
  for r in $(seq 1 "$runs"); do
    for n in "${scale_list[@]}"; do
      say "scale run $r: $n hosts"
      start_server "scale-$n-$r"
      # One load-generator process for all phases: its steady hosts vouch
      # for the content it pushed (another process would report under
      # another boot id, and every heartbeat would ask for a snapshot). The
      # CLI is timed during the steady phase alone: from its mark to the end.
      stop=$tmp/stop-cli mark=$tmp/steady-started
      rm -f "$stop" "$mark"
      time_cli "scale-$n/run$r" "$stop" "$mark" status status &
      cli_status=$!
      time_cli "scale-$n/run$r" "$stop" "$mark" diff diff staging production &
      cli_diff=$!
      loadgen --server "$url" --server-pid "$server" --hosts "$n" --phases register,snapshot,steady \
        --duration "$duration" --steady-duration "$steady" --steady-mark "$mark" \
        --heartbeat-interval 15s --churn 10 --query-interval 1s --label "scale-$n/run$r" ||
        say "scale run $r, $n hosts: the load generator saw failed calls (errors in the results)"
      touch "$stop"
      wait "$cli_status" "$cli_diff"
      stop_server
    done
  done
fi

# The store part: the scale run's load on SQLite (one aggregator) and on
# PostgreSQL (BENCH_REPLICAS replicas of one database: the one holding the
# writer lease serves, and the load generator reaches it directly, as a
# balancer that checks /ready would send it; the others stand by), in the
# same run. PostgreSQL is the test harness's server with fsync on
# (envparity-test-postgres --durable); its CPU is every postgres process's
# time, children included, around the load generator's run.
# Seconds from T0 to T1 (default: now), one decimal.
seconds() { awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN {printf "%.1f", b - a}'; }
# CPU clock TICKS as seconds, two decimals.
tick_seconds() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'; }
# The index of a PostgreSQL replica (in pids and metrics) other than
# SKIP that answers /ready 200, i.e. serves; fails when none does.
ready_replica() {
  local i
  for i in "${!pids[@]}"; do
    [[ $i == "${1:-}" ]] && continue
    curl -fs "http://127.0.0.1:${metrics[$i]}/ready" >/dev/null 2>&1 && { echo "$i"; return 0; }
  done
  return 1
}

postgres_cpu_ticks() {
  local pid total=0 fields
  for pid in $(pgrep -u postgres); do
    read -r -a fields <"/proc/$pid/stat" 2>/dev/null || continue
    # utime, stime, cutime, cstime (fields 14-17; the name has no space here)
    total=$((total + fields[13] + fields[14] + fields[15] + fields[16]))
  done
  echo "$total"
}

if has store; then
  cargo build --release --locked -p envparity-tests --bin envparity-test-postgres >&2
  # shellcheck source=SCRIPTDIR/lib/postgres.sh
  . scripts/lib/postgres.sh
  postgres_start "$bin/envparity-test-postgres" "$tmp" --durable || exit 1
  pg_url=$postgres_url
  psql=/usr/lib/postgresql/15/bin/psql
  replicas=${BENCH_REPLICAS:-3}
  IFS=, read -r -a scale_list <<<"$scales"
  for r in $(seq 1 "$runs"); do
    for n in "${scale_list[@]}"; do
      # The load generator registers every host before any heartbeats:
      # hosts registered first would turn stale meanwhile (and the steady
      # phase would begin with the fleet coming back), which agents that
      # heartbeat while others register never see. So stale_after
      # outlasts the registration (BENCH_STALE_AFTER).
      limit=(--max-plaintext-hosts $((2 * n)) --stale-after "${BENCH_STALE_AFTER:-30m}")
      steady_load=(--hosts "$n" --phases register,snapshot,steady --duration "$duration"
        --steady-duration "$steady" --heartbeat-interval 15s --churn 10 --query-interval 1s --hash-by-container)
      if [[ ",$stores," == *",sqlite,"* ]]; then
        say "store run $r: $n hosts on SQLite"
        server_extra=("${limit[@]}")
        start_server "store-sqlite-$n-$r"
        loadgen --server "$url" --server-pid "$server" "${steady_load[@]}" --label "store-sqlite-$n/run$r" ||
          say "store run $r, $n hosts on SQLite: failed calls (in the results)"
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status")
        stop_server
        # A restart on the same data: timed from the start until it
        # listens (after loading the store), with its peak RSS.
        t_start=$EPOCHREALTIME restart=null restart_hwm=null
        "$bin/envparity" serve --insecure-plaintext --listen "127.0.0.1:$(free_port)" \
          --data-dir "$tmp/data-store-sqlite-$n-$r" "${limit[@]}" >"$tmp/serve-restart-$n-$r.log" 2>&1 &
        server=$!
        for _ in $(seq 1 6000); do
          if grep -q "envparity aggregator listening" "$tmp/serve-restart-$n-$r.log"; then
            restart=$(seconds "$t_start")
            restart_hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$server/status")
            break
          fi
          sleep 0.1
        done
        stop_server
        echo "{\"label\": \"store-sqlite-$n/run$r\", \"rss_kib\": $rss, \"restart_seconds\": $restart, \"restart_peak_rss_kib\": $restart_hwm}" >>"$out/store.jsonl"
        server_extra=()
      fi
      [[ ",$stores," == *",postgres,"* ]] || continue

      say "store run $r: $n hosts on PostgreSQL, $replicas replicas"
      db="bench_${n}_$r"
      "$psql" "$pg_url" -qAt -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >&2
      db_url=${pg_url/\/postgres\?//$db?}
      pids=() ports=() metrics=()
      for i in $(seq 1 "$replicas"); do
        ports+=("$(free_port)") metrics+=("$(free_port)")
        "$bin/envparity" serve --insecure-plaintext --store "$db_url" --listen "127.0.0.1:${ports[-1]}" \
          --metrics-listen "127.0.0.1:${metrics[-1]}" --report-rate 1000000 --report-burst 1000000 \
          "${limit[@]}" >"$tmp/serve-pg-$n-$r-$i.log" 2>&1 &
        pids+=($!)
      done
      holder=
      for _ in $(seq 1 300); do
        holder=$(ready_replica) && break
        sleep 0.2
      done
      [[ -n "$holder" ]] || { say "no replica took the writer lease"; kill "${pids[@]}"; exit 1; }
      before=$(postgres_cpu_ticks) t0=$EPOCHREALTIME
      # PostgreSQL's CPU in the steady phase alone, from its mark on.
      mark=$tmp/steady-$n-$r
      rm -f "$mark" "$mark.ticks"
      (while [[ ! -e "$mark" ]]; do sleep 0.05; done; echo "$(postgres_cpu_ticks) $EPOCHREALTIME" >"$mark.ticks") &
      watcher=$!
      # BENCH_VIA=standby sends the load to a standby, which passes each
      # connection on to the serving replica (the forwarding hop); its CPU
      # is taken too. The server CPU loadgen reports stays the serving one's.
      entry=$holder label=store-postgres-$n/run$r
      if [[ "${BENCH_VIA:-serving}" == standby ]]; then
        entry=$(((holder + 1) % replicas)) label=store-postgres-via-standby-$n/run$r
      fi
      entry_ticks=$(awk '{print $14 + $15}' "/proc/${pids[$entry]}/stat")
      loadgen --server "http://127.0.0.1:${ports[$entry]}" --server-pid "${pids[$holder]}" "${steady_load[@]}" \
        --steady-mark "$mark" --label "$label" ||
        say "store run $r, $n hosts on PostgreSQL: failed calls (in the results)"
      entry_cpu=$(tick_seconds $(($(awk '{print $14 + $15}' "/proc/${pids[$entry]}/stat") - entry_ticks)))
      after=$(postgres_cpu_ticks) t1=$EPOCHREALTIME
      wait "$watcher" 2>/dev/null || true
      read -r steady_ticks steady_t0 <"$mark.ticks"
      rss=0
      for pid in "${pids[@]}"; do rss=$((rss + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status"))); done
      # A takeover: the serving replica killed (SIGKILL), timed until
      # another one answers /ready (its lease term, then loading the store).
      takeover=null takeover_hwm=null
      if ((replicas > 1)); then
        kill -KILL "${pids[$holder]}"
        t_kill=$EPOCHREALTIME
        for _ in $(seq 1 6000); do
          if next=$(ready_replica "$holder"); then
            takeover=$(seconds "$t_kill")
            # The new serving replica's peak memory: loading the store.
            takeover_hwm=$(awk '/^VmHWM/ {print $2}' "/proc/${pids[$next]}/status")
            break
          fi
          sleep 0.1
        done
      fi
      echo "{\"label\": \"$label\", \"replicas\": $replicas, \"entry_cpu_seconds\": $entry_cpu, \"takeover_seconds\": $takeover, \"takeover_peak_rss_kib\": $takeover_hwm, \"lease_ttl\": \"10s\", \"rss_kib_all_replicas\": $rss, \"postgres_cpu_seconds\": $(tick_seconds $((after - before))), \"postgres_wall_seconds\": $(seconds "$t0" "$t1"), \"postgres_steady_cpu_seconds\": $(tick_seconds $((after - steady_ticks))), \"postgres_steady_seconds\": $(seconds "$steady_t0" "$t1"), \"database_bytes\": $("$psql" "$db_url" -qAt -c "SELECT pg_database_size(current_database())")}" >>"$out/store.jsonl"
      # Who held the lease when, and who served (the takeover's story).
      grep -h "writer lease\|listening" "$tmp"/serve-pg-"$n"-"$r"-*.log >"$out/store-pg-$n-$r-lease.log" || true
      kill -TERM "${pids[@]}"
      wait "${pids[@]}" 2>/dev/null || true
    done
  done
  postgres_stop
fi

if has attack; then
  make_pki
  steady_fleet=(--tls-dir "$tmp/pki" --hosts "$tls_hosts" --phases register,steady
    --steady-duration "${BENCH_ATTACK_STEADY:-30s}" --heartbeat-interval 1s --churn 5 --query-interval 1s)
  for r in $(seq 1 "$runs"); do
    say "attack run $r: the steady fleet alone"
    start_server "attack-alone-$r" "$tmp/pki"
    loadgen --server "$url" --server-pid "$server" "${steady_fleet[@]}" --label "attack-alone/run$r"
    stop_server
    say "attack run $r: the steady fleet under attack"
    start_server "attack-under-$r" "$tmp/pki"
    "$bin/envparity-attack" --server "${url#https://}" --ca "$tmp/pki/ca.pem" --server-pid "$server" \
      --idle 2000 --slow-streams 1000 --sources 64 --duration "${BENCH_ATTACK_SECONDS:-60s}" \
      --json "$out/attack.jsonl" >"$tmp/attack-$r.json" &
    attacker=$!
    sleep 15 # the attack at full strength before the fleet starts
    loadgen --server "$url" --server-pid "$server" "${steady_fleet[@]}" --label "attack-under/run$r"
    wait "$attacker"
    # Nothing acknowledged is missing: every host the load generator
    # registered is stored.
    "$bin/envparity" --server "$url" --tls-ca "$tmp/pki/ca.pem" --tls-cert "$tmp/pki/client-loadgen.pem" \
      --tls-key "$tmp/pki/client-loadgen-key.pem" -o json hosts |
      python3 -c 'import json, sys; h = json.load(sys.stdin)["hosts"]; print(json.dumps({"label": sys.argv[1], "hosts_stored": len(h)}))' \
        "attack-under/run$r" >>"$out/attack-stored.jsonl"
    stop_server
  done
fi

if has web; then
  web_hosts=${BENCH_WEB_HOSTS:-10000}
  for r in $(seq 1 "$runs"); do
    say "web run $r: $web_hosts hosts, the overview in headless Chromium"
    web_port=$(free_port)
    server_extra=(--web-listen "127.0.0.1:$web_port" --max-plaintext-hosts $((2 * web_hosts)))
    start_server "web-$r"
    server_extra=()
    mark=$tmp/web-steady-$r
    loadgen --server "$url" --server-pid "$server" --hosts "$web_hosts" --phases register,steady \
      --steady-duration "${BENCH_WEB_STEADY:-150s}" --steady-mark "$mark" --heartbeat-interval 15s \
      --churn 10 --query-interval 0s --label "web-$web_hosts/run$r" &
    fleet=$!
    while [[ ! -e "$mark" ]] && kill -0 "$fleet" 2>/dev/null; do sleep 1; done
    echo "load when the overview is loaded (web run $r): $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt" >&2
    "$bin/envparity-webbench" --url "http://127.0.0.1:$web_port/" --samples "${BENCH_WEB_SAMPLES:-20}" \
      --json "$out/web.jsonl" --label "web-$web_hosts/run$r" | tee -a "$out/web.txt" >&2
    echo "load after the overview loads (web run $r): $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt" >&2
    wait "$fleet" || say "web run $r: the load generator saw failed calls (errors in the results)"
    stop_server
  done
fi

if has engine; then
  say "engine: cargo bench (criterion)"
  cargo bench --locked -p envparity-aggregator --bench parity 2>&1 | tee "$out/criterion.txt" >&2
fi

if has agent; then
  for r in $(seq 1 "$runs"); do
    say "agent run $r"
    ENVPARITY_AGENT_BIN=${ENVPARITY_AGENT_BIN:-$agent_bin} ENVPARITY_BIN=$bin/envparity \
      tests/deploy/measure-agent.sh --counts 0,10,100 --seconds "${BENCH_AGENT_SECONDS:-90}" --idle \
      --trials "${BENCH_TRIALS:-20}" --node-exporter --json "$out/agent.jsonl" | tee -a "$out/agent.txt" >&2
  done
fi

if has agent-containerd; then
  for r in $(seq 1 "$runs"); do
    say "agent on containerd, run $r"
    ENVPARITY_AGENT_BIN=${ENVPARITY_AGENT_BIN:-$agent_bin} ENVPARITY_BIN=$bin/envparity \
      tests/deploy/measure-agent.sh --runtime containerd --counts 100 --seconds "${BENCH_AGENT_SECONDS:-90}" \
      --idle --trials "${BENCH_CRI_TRIALS:-100}" --node-exporter --json "$out/agent-containerd.jsonl" |
      tee -a "$out/agent-containerd.txt" >&2
  done
fi

echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt" >&2
python3 scripts/bench-summary.py "$out" | tee "$out/summary.md"
