#!/usr/bin/env bash
# Measures envparity-agent against a real dockerd: its footprint (the figures
# behind the resource requests and limits in deploy/kubernetes and the Helm
# chart, docs/deploy.md "Resources") and, with --trials, how fast a change
# reaches the aggregator and an alert reaches a webhook (docs/benchmarks.md).
# Not part of the test suite: its numbers are for a person to read. As root:
#
#   cargo build --profile release-agent --locked -p envparity-agent   # as shipped
#   cargo build --release --locked -p envparity-aggregator
#   tests/deploy/measure-agent.sh [CONTAINERS] [SECONDS]   # default 30 containers, 120 s, with churn
#   tests/deploy/measure-agent.sh --counts 0,10,100 --seconds 120 --idle --trials 20 \
#       --node-exporter --json agent.jsonl                 # what scripts/bench.sh runs
#   cargo build -p envparity-tests --bin envparity-cri-node
#   tests/deploy/measure-agent.sh --runtime containerd --counts 100 --seconds 90 --idle \
#       --trials 100 --node-exporter --json agent-containerd.jsonl   # a containerd node
#
# One sandboxed dockerd (scripts/lib/fleet.sh) runs busybox containers, each
# with a few env variables and labels. With --runtime containerd, a scratch
# containerd serving the CRI runs pods instead (tests/src/bin/envparity-cri-node.rs,
# the e2e harness's node: each pod made as the kubelet makes it, its service
# a pod label, the same env), and the agent reads it with --runtime
# containerd, directly on its socket; "docker run" below is then the CRI's
# RunPodSandbox, CreateContainer and StartContainer of one pod. An aggregator runs on loopback with
# mutual TLS; the release agent reports with its default intervals (heartbeat
# 15 s, resync 60 s). For each container count (--counts, containers are
# added between counts) a fresh agent starts; once the aggregator shows all
# its containers, VmRSS is sampled every second for SECONDS, and the agent's
# CPU time over that window is read from /proc/PID/stat:
#   - by default (--churn) one container is started and one removed every
#     5 s throughout, each a Docker event and a re-collection; the first
#     count also lists every Engine API call the agent made (dockerd's debug
#     log during a quiet `--once`), the list in docs/deploy.md;
#   - with --idle nothing happens on the engine: the agent's idle cost.
# With --trials N, after the window:
#   - N times: `docker run` of a new service, then the CLI is polled without
#     pause until the aggregator shows it (`envparity service NAME`); the
#     time is counted from the start of `docker run`, and `docker run`'s own
#     share is reported too; the container is removed again;
#   - N times: `docker run` of a second replica of service `drift` with
#     another MODE than the first (a replica_drift warning), timed until a
#     local webhook receiver (tests/deploy/webhook-receiver.py) has the
#     firing alert; the policy has grace 0 and alert_grace 0; the replica is
#     removed and the resolution awaited before the next trial.
# With --node-exporter, Debian's prometheus-node-exporter runs beside it (all
# default collectors, scraped every 15 s like a Prometheus would) and its
# RSS is sampled in the same windows: the footprint of a minimal host agent.
# --json FILE appends one JSON object per container count.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd -P)

counts=30
runtime=docker
seconds=120
mode=churn
trials=0
node_exporter=0
json=
positional=()
while (($#)); do
  case $1 in
    --counts) counts=$2; shift 2 ;;
    --runtime) runtime=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --idle) mode=idle; shift ;;
    --churn) mode=churn; shift ;;
    --trials) trials=$2; shift 2 ;;
    --node-exporter) node_exporter=1; shift ;;
    --json) json=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "measure: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) positional+=("$1"); shift ;;
  esac
done
((${#positional[@]} > 0)) && counts=${positional[0]}
((${#positional[@]} > 1)) && seconds=${positional[1]}
IFS=, read -r -a count_list <<<"$counts"
[[ $runtime == docker || $runtime == containerd ]] ||
  { echo "measure: --runtime $runtime: docker or containerd" >&2; exit 2; }

agent_bin=${ENVPARITY_AGENT_BIN:-$root/target/release-agent/envparity-agent}
server_bin=${ENVPARITY_BIN:-$root/target/release/envparity}
[[ -x "$server_bin" ]] || server_bin=$root/target/debug/envparity
node_exporter_bin=${NODE_EXPORTER_BIN:-/usr/bin/prometheus-node-exporter}
node_bin=${ENVPARITY_CRI_NODE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/envparity-cri-node}
needed=("$agent_bin" "$server_bin")
[[ $runtime == containerd ]] && needed+=("$node_bin")
for bin in "${needed[@]}"; do
  [[ -x "$bin" ]] || { echo "measure: $bin missing: build it first (see --help)" >&2; exit 1; }
done
if ((node_exporter)) && [[ ! -x "$node_exporter_bin" ]]; then
  echo "measure: $node_exporter_bin missing: apt-get install prometheus-node-exporter (scripts/setup.sh)" >&2
  exit 1
fi

# shellcheck source=SCRIPTDIR/../../scripts/lib/fleet.sh
. scripts/lib/fleet.sh
fleet_init
pids=()
agent=
node_pid=
measure_stop() {
  local status=$?
  [[ -n "$agent" ]] && pids+=("$agent")
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  # The containerd node stops its pods, containerd, dockerd and registry at
  # the end of its input.
  if [[ -n "$node_pid" ]]; then
    exec {node_in}>&-
    wait "$node_pid" 2>/dev/null || true
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

# Microseconds since the epoch.
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }

# The P-th percentile (nearest rank) of the numbers in FILE, or "-".
pct() {
  local file=$1 p=$2 n
  n=$(wc -l <"$file")
  ((n > 0)) || { echo "-"; return; }
  sort -n "$file" | sed -n "$(((n * p + 99) / 100))p"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { local s; read -r -a s <"/proc/$1/stat"; echo $((s[13] + s[14])); }

# node_call WORDS…: one command to the containerd node; its answer after "ok".
node_call() {
  local reply
  printf '%s\n' "$*" >&"$node_in"
  IFS= read -r reply <&"$node_out" || { echo "measure: the containerd node exited (see $FLEET_DIR/node.log)" >&2; return 1; }
  [[ $reply == ok* ]] || { echo "measure: the containerd node: $* -> $reply" >&2; return 1; }
  echo "${reply#ok}"
}
if [[ $runtime == docker ]]; then
  fleet_start_host prod >/dev/null
  host_dir=$FLEET_DIR/hosts/prod
  fleet_make_image prod app:1 1.0.0 >/dev/null
  runtime_args=(--docker-host "$(fleet_docker_host prod)")
else
  mkfifo "$FLEET_DIR/node.in" "$FLEET_DIR/node.out"
  "$node_bin" <"$FLEET_DIR/node.in" >"$FLEET_DIR/node.out" 2>"$FLEET_DIR/node.log" &
  node_pid=$!
  exec {node_in}>"$FLEET_DIR/node.in" {node_out}<"$FLEET_DIR/node.out"
  socket=
  while IFS= read -r line <&"$node_out"; do
    [[ $line == "socket "* ]] && socket=${line#socket }
    [[ $line == ready ]] && break
  done
  [[ -n $socket ]] || { echo "measure: the containerd node did not start:" >&2; cat "$FLEET_DIR/node.log" >&2; exit 1; }
  runtime_args=(--runtime containerd --runtime-socket "$socket")
fi
start_what="docker run"
[[ $runtime == containerd ]] && start_what="pod start (CRI)"
have=0
add_containers() {
  if [[ $runtime == containerd ]]; then
    node_call pods "$1" >/dev/null
    have=$1
    return
  fi
  while ((have < $1)); do
    have=$((have + 1))
    fleet_docker prod run -d --network none --name "app-$have" --label envparity.service="svc-$((have % 10))" \
      --label team=demo -e LOG_LEVEL=info -e DB_PASSWORD="pw-$have" -e FEATURE_X=on -e WORKERS=4 app:1 >/dev/null
  done
}
# rt_run NAME SERVICE [KEY=VALUE…]: starts container NAME of SERVICE (`-`:
# no envparity.service label) running app:1 with that env, and returns once
# the runtime says it started.
rt_run() {
  local name=$1 service=$2
  shift 2
  if [[ $runtime == containerd ]]; then
    node_call run "$name" "$service" "$@" >/dev/null
    return
  fi
  local args=(--name "$name") kv
  [[ $service != - ]] && args+=(--label envparity.service="$service")
  for kv in "$@"; do args+=(-e "$kv"); done
  fleet_docker prod run -d --network none "${args[@]}" app:1 >/dev/null
}
rt_rm() {
  if [[ $runtime == containerd ]]; then
    node_call rm "$1" >/dev/null
  else
    fleet_docker prod rm -f "$1" >/dev/null
  fi
}

port=$(free_port)
head -c 32 /dev/urandom >"$FLEET_DIR/fleet.key"
chmod 600 "$FLEET_DIR/fleet.key"
# Mutual TLS, as deployed: the agent's footprint includes rustls.
pki=$FLEET_DIR/pki
"$server_bin" certs --dir "$pki" --server-name 127.0.0.1 --agent measure-1 --client measure >/dev/null
export ENVPARITY_SERVER=https://127.0.0.1:$port ENVPARITY_TLS_CA=$pki/ca.pem \
  ENVPARITY_QUERY_TLS_CERT=$pki/client-measure.pem ENVPARITY_QUERY_TLS_KEY=$pki/client-measure-key.pem
cli() { "$server_bin" "$@"; }

# Findings count at once and alert at once; no pinning rules (the containers
# run a tag), so the only warning is the drift a trial makes.
cat >"$FLEET_DIR/policy.toml" <<'EOF'
grace = "0s"
alert_grace = "0s"
[pinning]
required = []
elsewhere = "off"
EOF
serve_args=(--listen "127.0.0.1:$port" --data-dir "$FLEET_DIR/data" --policy "$FLEET_DIR/policy.toml"
  --tls-cert "$pki/server.pem" --tls-key "$pki/server-key.pem" --tls-client-ca "$pki/ca.pem")
hook_log=$FLEET_DIR/webhook.log
if ((trials > 0)); then
  hook_port=$(free_port)
  echo "whsec_$(head -c 32 /dev/urandom | base64)" >"$FLEET_DIR/hook-secret"
  chmod 600 "$FLEET_DIR/hook-secret"
  cat >"$FLEET_DIR/aggregator.toml" <<EOF
[alerts]
min_severity = "warning"
[[alerts.sinks]]
name = "measure"
type = "webhook"
url = "http://127.0.0.1:$hook_port/hook"
secret_file = "$FLEET_DIR/hook-secret"
backoff = "100ms"
EOF
  serve_args+=(--config "$FLEET_DIR/aggregator.toml")
  : >"$hook_log"
  python3 tests/deploy/webhook-receiver.py "$hook_port" "$hook_log" &
  pids+=($!)
fi
"$server_bin" serve "${serve_args[@]}" >"$FLEET_DIR/serve.log" 2>&1 &
pids+=($!)
_fleet_wait 30 "the aggregator on port $port" cli hosts

ne_pid=
if ((node_exporter)); then
  ne_port=$(free_port)
  "$node_exporter_bin" --web.listen-address="127.0.0.1:$ne_port" >"$FLEET_DIR/node-exporter.log" 2>&1 &
  ne_pid=$!
  pids+=("$ne_pid")
  _fleet_wait 30 "node_exporter on port $ne_port" _fleet_http_ok "$ne_port" /metrics
fi
# GET /metrics of node_exporter and read the whole answer, as a scrape does.
scrape() {
  exec 3<>"/dev/tcp/127.0.0.1/$ne_port" || return 0
  printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  cat <&3 >/dev/null
  exec 3<&-
}

agent_args=(--aggregator "https://127.0.0.1:$port" --environment production --host-id measure-1
  --tls-ca "$pki/ca.pem" --tls-cert "$pki/agent-measure-1.pem" --tls-key "$pki/agent-measure-1-key.pem"
  "${runtime_args[@]}" --fingerprint-key-file "$FLEET_DIR/fleet.key"
  --clear-env LOG_LEVEL)

# Which Engine API endpoints the agent calls: dockerd's debug log ("Calling
# METHOD PATH") during a --once, when nothing else talks to this engine.
# `debug` is reloadable with SIGHUP.
list_api_calls() {
  echo '{"debug": true}' >"$host_dir/daemon.json"
  kill -HUP "$(<"$host_dir/pid")"
  sleep 1
  local mark
  mark=$(wc -l <"$host_dir/dockerd.log")
  "$agent_bin" "${agent_args[@]}" --once 2>"$FLEET_DIR/once.log"
  sleep 1
  echo "Engine API calls made by the agent (dockerd debug log):"
  tail -n +"$((mark + 1))" "$host_dir/dockerd.log" | grep -o 'Calling [A-Z]* [^ "]*' |
    sed -E 's#/v1\.[0-9]+##; s#/(containers|images)/[0-9a-f]{12,}/#/\1/{id}/#; s#sha256:[0-9a-f]{64}#{id}#; s#\?.*##' |
    sort | uniq -c
  echo '{}' >"$host_dir/daemon.json"
  kill -HUP "$(<"$host_dir/pid")"
}

# Polls `check` without pause until it succeeds or `limit` seconds passed;
# prints the microsecond time it succeeded, or nothing.
poll_until() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then
      now_us
      return 0
    fi
  done
  return 1
}

# The arrival time (µs) of the first webhook event of TYPE for an alert id
# starting with PREFIX, after line SKIP of the receiver's log.
hook_event() {
  local skip=$1 type=$2 prefix=$3 t
  t=$(tail -n +"$((skip + 1))" "$hook_log" | awk -v ty="envparity.alert.$type" -v p="$prefix" \
    '$2 == ty && index($3, p) == 1 { print $1; exit }')
  [[ -n "$t" ]] || return 1
  echo "${t/./}"
}

gone() { ! cli service "$1"; }

shows_count() {
  cli hosts -o json 2>/dev/null | grep -q "\"container_count\": *$1[,}]"
}

first=1
for count in "${count_list[@]}"; do
  add_containers "$count"
  if ((first)) && [[ $mode == churn && $runtime == docker ]]; then
    list_api_calls
  fi
  first=0
  "$agent_bin" "${agent_args[@]}" 2>"$FLEET_DIR/agent-$count.log" &
  agent=$!
  _fleet_wait 120 "the aggregator to show $count containers" shows_count "$count"
  sleep 5

  echo "measuring for ${seconds}s with $count containers ($mode)…"
  samples=$FLEET_DIR/rss-$count
  ne_samples=$FLEET_DIR/ne-rss-$count
  : >"$samples"
  : >"$ne_samples"
  churn=0
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  cpu0=$(cpu_ticks "$agent")
  ne_cpu0=0
  [[ -n "$ne_pid" ]] && ne_cpu0=$(cpu_ticks "$ne_pid")
  start=$SECONDS
  while ((SECONDS - start < seconds)); do
    kill -0 "$agent" || { echo "the agent died:" >&2; cat "$FLEET_DIR/agent-$count.log" >&2; exit 1; }
    rss_kib "$agent" >>"$samples"
    if [[ -n "$ne_pid" ]]; then
      rss_kib "$ne_pid" >>"$ne_samples"
      (((SECONDS - start) % 15 == 0)) && scrape
    fi
    if [[ $mode == churn ]] && (((SECONDS - start) % 5 == 0)); then
      churn=$((churn + 1))
      rt_run "churn-$churn" - LOG_LEVEL=debug
      ((churn > 1)) && rt_rm "churn-$((churn - 1))"
    fi
    sleep 1
  done
  cpu1=$(cpu_ticks "$agent")
  ((churn > 0)) && rt_rm "churn-$churn"
  hwm=$(hwm_kib "$agent")
  clk=$(getconf CLK_TCK)
  millicores=$(awk -v t=$((cpu1 - cpu0)) -v hz="$clk" -v s="$seconds" 'BEGIN { printf "%.2f", 1000 * t / hz / s }')
  echo "agent $("$agent_bin" --version) on $runtime, $count containers, ${seconds}s ($mode), load $load_before"
  echo "  RSS median $(pct "$samples" 50) KiB, max sampled $(pct "$samples" 100) KiB, peak (VmHWM) ${hwm} KiB"
  echo "  CPU $(awk -v t=$((cpu1 - cpu0)) -v hz="$clk" 'BEGIN { printf "%.2f", t / hz }') s in ${seconds} s = ${millicores} millicores on average"
  ne_json=null
  if [[ -n "$ne_pid" ]]; then
    ne_cpu1=$(cpu_ticks "$ne_pid")
    ne_millicores=$(awk -v t=$((ne_cpu1 - ne_cpu0)) -v hz="$clk" -v s="$seconds" 'BEGIN { printf "%.2f", 1000 * t / hz / s }')
    echo "  node_exporter RSS median $(pct "$ne_samples" 50) KiB, peak (VmHWM) $(hwm_kib "$ne_pid") KiB, CPU ${ne_millicores} millicores (scraped every 15 s)"
    ne_json="{\"rss_kib_median\": $(pct "$ne_samples" 50), \"hwm_kib\": $(hwm_kib "$ne_pid"), \"millicores\": $ne_millicores}"
  fi

  state_json=null
  alert_json=null
  if ((trials > 0)); then
    to_state=$FLEET_DIR/to-state-$count
    run_ms=$FLEET_DIR/docker-run-$count
    to_alert=$FLEET_DIR/to-alert-$count
    : >"$to_state"
    : >"$run_ms"
    : >"$to_alert"
    failures=0
    for k in $(seq 1 "$trials"); do
      name=lat-$count-$k
      t0=$(now_us)
      rt_run "$name" "$name"
      t1=$(now_us)
      if t2=$(poll_until 10 cli service "$name"); then
        echo $(((t2 - t0) / 1000)) >>"$to_state"
        echo $(((t1 - t0) / 1000)) >>"$run_ms"
      else
        failures=$((failures + 1))
      fi
      rt_rm "$name"
      poll_until 10 gone "$name" >/dev/null || true
    done
    echo "  $start_what -> aggregator shows it ($trials runs): p50 $(pct "$to_state" 50) ms, p99 $(pct "$to_state" 99) ms, max $(pct "$to_state" 100) ms; $start_what itself p50 $(pct "$run_ms" 50) ms; $failures not seen within 10 s"
    state_json="{\"p50_ms\": $(pct "$to_state" 50), \"p99_ms\": $(pct "$to_state" 99), \"max_ms\": $(pct "$to_state" 100), \"docker_run_p50_ms\": $(pct "$run_ms" 50), \"runs\": $trials, \"failures\": $failures}"

    rt_run drift-base drift MODE=a
    _fleet_wait 30 "the aggregator to show service drift" cli service drift
    sleep 2
    failures=0
    for k in $(seq 1 "$trials"); do
      skip=$(wc -l <"$hook_log")
      t0=$(now_us)
      rt_run "drift-$k" drift MODE=b
      if t2=$(poll_until 10 hook_event "$skip" firing "replica_drift|drift|"); then
        echo $(((t2 - t0) / 1000)) >>"$to_alert"
      else
        failures=$((failures + 1))
      fi
      rt_rm "drift-$k"
      poll_until 15 hook_event "$skip" resolved "replica_drift|drift|" >/dev/null || true
    done
    rt_rm drift-base
    echo "  $start_what of a drifting replica -> firing alert at the webhook ($trials runs): p50 $(pct "$to_alert" 50) ms, p99 $(pct "$to_alert" 99) ms, max $(pct "$to_alert" 100) ms; $failures not within 10 s"
    alert_json="{\"p50_ms\": $(pct "$to_alert" 50), \"p99_ms\": $(pct "$to_alert" 99), \"max_ms\": $(pct "$to_alert" 100), \"runs\": $trials, \"failures\": $failures}"
  fi
  if grep -E ' (WARN|ERROR) ' "$FLEET_DIR/agent-$count.log"; then
    echo "(the agent logged the warnings above)"
  fi
  if [[ -n "$json" ]]; then
    printf '{"runtime": "%s", "containers": %s, "seconds": %s, "mode": "%s", "load_before": "%s", "agent": {"rss_kib_median": %s, "rss_kib_max": %s, "hwm_kib": %s, "millicores": %s}, "node_exporter": %s, "run_to_state": %s, "run_to_alert": %s}\n' \
      "$runtime" "$count" "$seconds" "$mode" "$load_before" "$(pct "$samples" 50)" "$(pct "$samples" 100)" "$hwm" "$millicores" \
      "$ne_json" "$state_json" "$alert_json" >>"$json"
  fi
  kill -TERM "$agent"
  wait "$agent" 2>/dev/null || true
  agent=
done
