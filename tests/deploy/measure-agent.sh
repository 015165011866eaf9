#!/usr/bin/env bash
# Measures envparity-agent's footprint against a real dockerd: the figures
# behind the resource requests and limits in deploy/kubernetes and the Helm
# chart (docs/deploy.md, "Resources"). Not part of the test suite: it takes
# about two minutes and its numbers are for a person to read. As root:
#
#   cargo build --release --locked -p envparity-agent -p envparity-aggregator
#   tests/deploy/measure-agent.sh [CONTAINERS] [SECONDS]   # default 30 containers, 120 s
#
# One sandboxed dockerd (scripts/lib/fleet.sh) runs CONTAINERS busybox
# containers, each with a few env variables and labels; an aggregator runs on
# loopback; the release agent reports with its default intervals (heartbeat
# 15 s, resync 60 s). While it runs, one container is started and one removed
# every 5 s (each a Docker event: a re-collection and a snapshot push), so the
# figures include steady churn, not just idling. Samples VmRSS every second,
# then prints the agent's steady RSS, its peak (VmHWM) and its CPU use. It
# also turns on dockerd's debug log during a quiet `--once` and prints every
# Engine API call the agent made (the list in docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd -P)
containers=${1:-30}
seconds=${2:-120}
agent_bin=${ENVPARITY_AGENT_BIN:-$root/target/release/envparity-agent}
server_bin=${ENVPARITY_BIN:-$root/target/release/envparity}
[[ -x "$server_bin" ]] || server_bin=$root/target/debug/envparity
for bin in "$agent_bin" "$server_bin"; do
  [[ -x "$bin" ]] || { echo "measure: $bin missing: cargo build --release --locked first" >&2; exit 1; }
done

# shellcheck source=SCRIPTDIR/../../scripts/lib/fleet.sh
. scripts/lib/fleet.sh
fleet_init
pids=()
measure_stop() {
  local status=$?
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  fleet_stop_all
  exit "$status"
}
trap measure_stop EXIT

fleet_start_host prod >/dev/null
host_dir=$FLEET_DIR/hosts/prod
fleet_make_image prod app:1 1.0.0 >/dev/null
for i in $(seq 1 "$containers"); do
  fleet_docker prod run -d --network none --name "app-$i" --label envparity.service="svc-$((i % 10))" \
    --label team=demo -e LOG_LEVEL=info -e DB_PASSWORD="pw-$i" -e FEATURE_X=on -e WORKERS=4 app:1 >/dev/null
done

port=$((20000 + RANDOM % 20000))
head -c 32 /dev/urandom >"$FLEET_DIR/fleet.key"
chmod 600 "$FLEET_DIR/fleet.key"
# Mutual TLS, as deployed: the agent's footprint includes rustls.
pki=$FLEET_DIR/pki
"$server_bin" certs --dir "$pki" --server-name 127.0.0.1 --agent measure-1 >/dev/null
"$server_bin" serve --listen "127.0.0.1:$port" --data-dir "$FLEET_DIR/data" \
  --tls-cert "$pki/server.pem" --tls-key "$pki/server-key.pem" --tls-client-ca "$pki/ca.pem" \
  >"$FLEET_DIR/serve.log" 2>&1 &
pids+=($!)
sleep 1
agent_args=(--aggregator "https://127.0.0.1:$port" --environment production --host-id measure-1
  --tls-ca "$pki/ca.pem" --tls-cert "$pki/agent-measure-1.pem" --tls-key "$pki/agent-measure-1-key.pem"
  --docker-host "$(fleet_docker_host prod)" --fingerprint-key-file "$FLEET_DIR/fleet.key"
  --clear-env LOG_LEVEL)

# Which Engine API endpoints the agent calls: dockerd's debug log ("Calling
# METHOD PATH") during a --once and the first seconds of a run, when nothing
# else talks to this engine. `debug` is reloadable with SIGHUP.
echo '{"debug": true}' >"$host_dir/daemon.json"
kill -HUP "$(<"$host_dir/pid")"
sleep 1
mark=$(wc -l <"$host_dir/dockerd.log")
"$agent_bin" "${agent_args[@]}" --once 2>"$FLEET_DIR/once.log"
"$agent_bin" "${agent_args[@]}" 2>"$FLEET_DIR/agent.log" &
agent=$!
pids+=("$agent")
sleep 3
echo "Engine API calls made by the agent (dockerd debug log):"
tail -n +"$((mark + 1))" "$host_dir/dockerd.log" | grep -o 'Calling [A-Z]* [^ "]*' |
  sed -E 's#/v1\.[0-9]+##; s#/(containers|images)/[0-9a-f]{12,}/#/\1/{id}/#; s#sha256:[0-9a-f]{64}#{id}#; s#\?.*##' |
  sort | uniq -c
echo '{}' >"$host_dir/daemon.json"
kill -HUP "$(<"$host_dir/pid")"

echo "measuring for ${seconds}s with $containers containers, one started and one removed every 5 s…"
samples=()
churn=0
clk=$(getconf CLK_TCK)
read -r -a stat <"/proc/$agent/stat"
cpu0=$((stat[13] + stat[14]))
start=$SECONDS
while ((SECONDS - start < seconds)); do
  kill -0 "$agent" || { echo "the agent died:" >&2; cat "$FLEET_DIR/agent.log" >&2; exit 1; }
  samples+=("$(awk '/^VmRSS:/ {print $2}' "/proc/$agent/status")")
  if (((SECONDS - start) % 5 == 0)); then
    churn=$((churn + 1))
    fleet_docker prod run -d --network none --name "churn-$churn" -e LOG_LEVEL=debug app:1 >/dev/null
    ((churn > 1)) && fleet_docker prod rm -f "churn-$((churn - 1))" >/dev/null
  fi
  sleep 1
done
read -r -a stat <"/proc/$agent/stat"
cpu1=$((stat[13] + stat[14]))
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$agent/status")
sorted=$(printf '%s\n' "${samples[@]}" | sort -n)
n=${#samples[@]}
median=$(sed -n "$(((n + 1) / 2))p" <<<"$sorted")
max=$(tail -n 1 <<<"$sorted")
echo "agent $("$agent_bin" --version), $containers containers, ${seconds}s, $churn start/remove cycles"
echo "  RSS median ${median} KiB, max sampled ${max} KiB, peak (VmHWM) ${hwm} KiB"
awk -v t=$((cpu1 - cpu0)) -v hz="$clk" -v s="$seconds" \
  'BEGIN { printf "  CPU %.2f s in %d s = %.1f millicores on average\n", t / hz, s, 1000 * t / hz / s }'
if grep -E ' (WARN|ERROR) ' "$FLEET_DIR/agent.log"; then
  echo "(the agent logged the warnings above)"
fi
