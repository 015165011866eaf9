#!/usr/bin/env bash
# The soak: several sandboxed Docker hosts with container churn, their agents
# and an aggregator (release builds, mutual TLS) running for a set time, with
# the RSS of every daemon sampled over time, every warning and error counted,
# queries answered throughout, and the final state compared with the engines.
# Not part of the test suite (it takes half an hour); its figures are in
# docs/reliability.md. As root:
#
#   scripts/soak.sh [SECONDS] [HOSTS]        # default 1800 s, 3 hosts
#
# Every CHURN_EVERY seconds (default 2) one host changes: a container starts,
# one is removed, or one is replaced by another image under the same name;
# each host keeps 2 to 12 containers. Every 10 s the VmRSS of the aggregator
# and of each agent is appended to rss.csv; every 30 s `envparity status` and
# `envparity history` must answer. The summary compares RSS after the
# warm-up (the first 20 % of the run, at least 5 minutes when the run allows)
# with the end and the peak, and checks the aggregator's view of every host
# against `docker ps`. Results stay in the printed directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)
duration=${1:-1800}
hosts=${2:-3}
churn_every=${CHURN_EVERY:-2}

scripts/setup.sh >/dev/null
cargo build --release --locked --quiet -p envparity-aggregator
cargo build --profile release-agent --locked --quiet -p envparity-agent
bin="$root/target/release"
agent_bin="$root/target/release-agent/envparity-agent"

# shellcheck source=SCRIPTDIR/lib/fleet.sh
. scripts/lib/fleet.sh
fleet_init
out=$(mktemp -d "${TMPDIR:-/tmp}/envparity-soak.XXXXXX")
pids=()
soak_stop() {
  local status=$?
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  fleet_stop_all
  echo "soak: results in $out"
  exit "$status"
}
trap soak_stop EXIT

names=()
for i in $(seq 1 "$hosts"); do
  fleet_start_host "h$i" >/dev/null
  fleet_make_image "h$i" app:1 1.0.0 >/dev/null
  fleet_make_image "h$i" app:2 2.0.0 >/dev/null
  names+=("h$i")
done

pki=$out/pki
agent_args=()
for h in "${names[@]}"; do agent_args+=(--agent "$h"); done
"$bin/envparity" certs --dir "$pki" --server-name 127.0.0.1 --client soak "${agent_args[@]}" >/dev/null
head -c 32 /dev/urandom >"$out/fleet.key"
chmod 600 "$out/fleet.key"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server="https://127.0.0.1:$port"
"$bin/envparity" serve --listen "127.0.0.1:$port" --data-dir "$out/data" \
  --tls-cert "$pki/server.pem" --tls-key "$pki/server-key.pem" --tls-client-ca "$pki/ca.pem" \
  >"$out/aggregator.log" 2>&1 &
aggregator=$!
pids+=("$aggregator")
agents=()
for h in "${names[@]}"; do
  "$agent_bin" --aggregator "$server" --environment "env-$h" --host-id "$h" \
    --tls-ca "$pki/ca.pem" --tls-cert "$pki/agent-$h.pem" --tls-key "$pki/agent-$h-key.pem" \
    --docker-host "$(fleet_docker_host "$h")" --fingerprint-key-file "$out/fleet.key" \
    --state-dir "$out/state-$h" --heartbeat-interval 5s --clear-env LOG_LEVEL \
    >"$out/agent-$h.log" 2>&1 &
  agents+=($!)
  pids+=($!)
done
export ENVPARITY_SERVER=$server ENVPARITY_TLS_CA=$pki/ca.pem \
  ENVPARITY_QUERY_TLS_CERT=$pki/client-soak.pem ENVPARITY_QUERY_TLS_KEY=$pki/client-soak-key.pem
cli() { "$bin/envparity" "$@"; }

deadline=$((SECONDS + 120))
until [[ "$(cli hosts -o json 2>/dev/null | grep -c '"state": "fresh"')" == "${#names[@]}" ]]; do
  ((SECONDS < deadline)) || { echo "soak: agents did not report within 120 s; see $out" >&2; exit 1; }
  sleep 0.5
done
# Every query's service exists from the start.
for i in $(seq 0 4); do
  fleet_docker "${names[0]}" run -d --network none --name "seed$i" --label envparity.service="svc-$i" \
    app:1 sleep 100000 >/dev/null
done

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
header=t_s,aggregator_kib
for h in "${names[@]}"; do header+=",agent_${h}_kib"; done
echo "$header" >"$out/rss.csv"

declare -A count
for h in "${names[@]}"; do count[$h]=0; done
count[${names[0]}]=5
serial=0
query_failures=0
start=$SECONDS
next_sample=0
next_query=10
echo "soak: ${duration}s, ${#names[@]} hosts, a change every ${churn_every}s; results in $out"
while ((SECONDS - start < duration)); do
  t=$((SECONDS - start))
  h=${names[RANDOM % ${#names[@]}]}
  n=${count[$h]}
  serial=$((serial + 1))
  action=$((RANDOM % 3))
  if ((n < 2)) || { ((action == 0)) && ((n < 12)); }; then
    fleet_docker "$h" run -d --network none --name "c$serial" --label envparity.service="svc-$((serial % 5))" \
      -e LOG_LEVEL=info -e DB_PASSWORD="pw-$serial" app:1 sleep 100000 >/dev/null
    count[$h]=$((n + 1))
  else
    victim=$(fleet_docker "$h" ps --format '{{.Names}}' | shuf -n 1)
    if ((action == 1)); then
      fleet_docker "$h" rm -f "$victim" >/dev/null
      count[$h]=$((n - 1))
    else
      service=$(fleet_docker "$h" inspect --format '{{index .Config.Labels "envparity.service"}}' "$victim")
      image=$(fleet_docker "$h" inspect --format '{{.Config.Image}}' "$victim")
      other=app:1
      [[ "$image" == app:1 ]] && other=app:2
      fleet_docker "$h" rm -f "$victim" >/dev/null
      fleet_docker "$h" run -d --network none --name "$victim" --label envparity.service="$service" \
        -e LOG_LEVEL=info -e DB_PASSWORD="pw-$serial" "$other" sleep 100000 >/dev/null
    fi
  fi
  if ((t >= next_sample)); then
    line="$t,$(rss "$aggregator")"
    for a in "${agents[@]}"; do line+=",$(rss "$a")"; done
    echo "$line" >>"$out/rss.csv"
    next_sample=$((t + 10))
  fi
  if ((t >= next_query)); then
    cli status -o json >/dev/null 2>>"$out/queries.err" || [[ $? == 1 ]] || query_failures=$((query_failures + 1))
    cli history svc-1 -o json >/dev/null 2>>"$out/queries.err" || query_failures=$((query_failures + 1))
    next_query=$((t + 30))
  fi
  for p in "$aggregator" "${agents[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "soak: process $p died; see $out" >&2; exit 1; }
  done
  sleep "$churn_every"
done

# Let the last changes arrive, then compare with the engines.
sleep 10
mismatches=0
hosts_json=$(cli hosts -o json)
for h in "${names[@]}"; do
  want=$(fleet_docker "$h" ps -q | wc -l)
  got=$(python3 -c 'import json,sys; d=json.load(sys.stdin); print([x["container_count"] for x in d["hosts"] if x["host_id"]==sys.argv[1]][0])' "$h" <<<"$hosts_json")
  if [[ "$want" != "$got" ]]; then
    echo "soak: $h runs $want containers, the aggregator shows $got" >&2
    mismatches=$((mismatches + 1))
  fi
done

python3 - "$out/rss.csv" "$duration" <<'PY' | tee "$out/summary.txt"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
duration = int(sys.argv[2])
warm = max(min(300, duration // 2), duration // 5)
after = [r for r in rows if int(r["t_s"]) >= warm]
print(f"samples: {len(rows)} over {rows[-1]['t_s']} s; warm-up {warm} s")
for col in rows[0]:
    if col == "t_s":
        continue
    first, last = int(after[0][col]), int(after[-1][col])
    peak = max(int(r[col]) for r in rows)
    print(f"{col}: after warm-up {first/1024:.1f} MiB, end {last/1024:.1f} MiB, "
          f"growth {(last-first)/1024:+.2f} MiB, peak {peak/1024:.1f} MiB")
PY
{
  echo "changes made: $serial"
  echo "query failures: $query_failures"
  echo "hosts whose final state differs from docker ps: $mismatches"
  for f in "$out"/aggregator.log "$out"/agent-*.log; do
    echo "$(basename "$f"): $(grep -c ' ERROR ' "$f" || true) errors, $(grep -c ' WARN ' "$f" || true) warnings"
  done
} | tee -a "$out/summary.txt"
((mismatches == 0 && query_failures == 0))
