#!/usr/bin/env bash
# The envparity demo, on a fresh Debian machine, as root:
#
#   scripts/demo.sh
#
# Installs what is missing (scripts/setup.sh), builds envparity, then starts three
# sandboxed Docker hosts (dev, staging, production: isolated dockerd with vfs storage,
# no network), a local registry, the aggregator on its embedded store (SQLite) and one
# agent per host, all talking mutual TLS 1.3 with certificates from `envparity certs`
# (each agent may report only for its own host; the CLI queries with its own
# certificate). It deploys a small two-service app the way a real pipeline would —
# built once in dev, pushed, pulled by staging and production — with deliberate drift:
#
#   - dev already runs shop 1.5.0 (ahead of staging: normal, reported as info);
#   - production runs a *rebuild* of checkout 2.0.0 instead of the promoted artifact,
#     by tag (production runs shop pinned by digest, as it should);
#   - production's shop has an extra FEATURE_NEW_CART flag (waived in the policy) and
#     another LOG_LEVEL;
#   - DB_PASSWORD differs per environment, as the policy says it may (and it is only
#     ever seen as a fingerprint).
#
# The aggregator runs with deploy/policy.example.toml. The demo prints `envparity
# hosts`, `status`, `diff staging production`, `explain checkout` and `gate --service
# checkout --to production`, and stops everything it started (by pid) on exit.
# ENVPARITY_DEMO_KEEP=1 keeps the fleet running until you press Enter.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)

scripts/setup.sh >/dev/null
echo "demo: building envparity (cargo build --locked)…"
cargo build --locked --quiet -p envparity-aggregator -p envparity-agent
bin="$root/target/debug"

# shellcheck source=SCRIPTDIR/lib/fleet.sh
. scripts/lib/fleet.sh
fleet_init

demo_pids=()
demo_stop() {
  local status=$?
  # Agents and aggregator first, so agents do not log their engines vanishing.
  if ((${#demo_pids[@]})); then
    kill -TERM "${demo_pids[@]}" 2>/dev/null || true
    wait "${demo_pids[@]}" 2>/dev/null || true
  fi
  fleet_stop_all
  exit "$status"
}
trap demo_stop EXIT

fleet_start_registry >/dev/null
for env in dev staging production; do fleet_start_host "$env" >/dev/null; done
reg=$FLEET_REGISTRY

echo "demo: building images in dev and promoting them through the registry…"
fleet_make_image dev shop:1.4.0 1.4.0 >/dev/null
fleet_make_image dev shop:1.5.0 1.5.0 >/dev/null
fleet_make_image dev checkout:2.0.0 2.0.0 >/dev/null
for tag in shop:1.4.0 shop:1.5.0 checkout:2.0.0; do fleet_push dev "$tag" >/dev/null; done
for env in staging production; do
  fleet_pull "$env" shop:1.4.0 >/dev/null
  fleet_pull "$env" checkout:2.0.0 >/dev/null
done
# The drift: production rebuilt checkout 2.0.0 from "the same Dockerfile" later.
fleet_make_image production checkout:2.0.0-rebuild 2.0.0-rebuilt >/dev/null
fleet_push production checkout:2.0.0-rebuild >/dev/null

run() { # run ENV SERVICE IMAGE [docker run args…]
  local env=$1 service=$2 image=$3
  shift 3
  fleet_docker "$env" run -d --network none --name "$service" \
    --label envparity.service="$service" "$@" "$reg/$image" >/dev/null
}
run dev        shop     shop:1.5.0     -e LOG_LEVEL=debug -e DB_PASSWORD=dev-pw-1
run staging    shop     shop:1.4.0     -e LOG_LEVEL=info  -e DB_PASSWORD=stg-pw-2
# Production pins shop by its registry digest.
shop_digest=$(fleet_docker production inspect --format '{{index .RepoDigests 0}}' "$reg/shop:1.4.0")
fleet_docker production run -d --network none --name shop --label envparity.service=shop \
  -e LOG_LEVEL=warn -e DB_PASSWORD=prd-pw-3 -e FEATURE_NEW_CART=on "$shop_digest" >/dev/null
run dev        checkout checkout:2.0.0 -e WORKERS=2
run staging    checkout checkout:2.0.0 -e WORKERS=2
run production checkout checkout:2.0.0-rebuild -e WORKERS=2

key="$FLEET_DIR/fleet.key"
head -c 32 /dev/urandom >"$key"
chmod 600 "$key"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server="https://127.0.0.1:$port"

# Mutual TLS, as in production: a fleet CA, the aggregator's certificate, one
# agent certificate per host id (an agent may report only for its own host)
# and a query certificate for the CLI.
pki="$FLEET_DIR/pki"
"$bin/envparity" certs --dir "$pki" --server-name 127.0.0.1 --client cli \
  --agent dev-1 --agent staging-1 --agent production-1 >/dev/null

"$bin/envparity" serve --listen "127.0.0.1:$port" --data-dir "$FLEET_DIR/envparity-data" \
  --tls-cert "$pki/server.pem" --tls-key "$pki/server-key.pem" --tls-client-ca "$pki/ca.pem" \
  --policy "$root/deploy/policy.example.toml" >"$FLEET_DIR/aggregator.log" 2>&1 &
demo_pids+=($!)
for env in dev staging production; do
  "$bin/envparity-agent" --aggregator "$server" --environment "$env" --host-id "$env-1" \
    --tls-ca "$pki/ca.pem" --tls-cert "$pki/agent-$env-1.pem" --tls-key "$pki/agent-$env-1-key.pem" \
    --docker-host "$(fleet_docker_host "$env")" --fingerprint-key-file "$key" \
    --state-dir "$FLEET_DIR/agent-state-$env" \
    --clear-env 'LOG_LEVEL,FEATURE_*' --label region=local \
    >"$FLEET_DIR/agent-$env.log" 2>&1 &
  demo_pids+=($!)
done

# The CLI's query certificate, through the variables its flags read.
export ENVPARITY_SERVER=$server ENVPARITY_TLS_CA=$pki/ca.pem \
  ENVPARITY_QUERY_TLS_CERT=$pki/client-cli.pem ENVPARITY_QUERY_TLS_KEY=$pki/client-cli-key.pem
cli() { "$bin/envparity" "$@"; }
echo "demo: waiting for the three agents to report…"
deadline=$((SECONDS + 60))
until [[ "$(cli hosts -o json 2>/dev/null | grep -c '"state": "fresh"')" == 3 ]]; do
  if ((SECONDS > deadline)); then
    echo "demo: agents did not report within 60 s; logs:" >&2
    tail -n 20 "$FLEET_DIR"/*.log >&2
    exit 2
  fi
  sleep 0.2
done

show() {
  printf '\n$ envparity %s\n' "$*"
  local code=0
  cli "$@" || code=$?
  printf '(exit %d)\n' "$code"
}
show hosts
show status
show diff staging production
show explain checkout
show gate --service checkout --to production

if [[ -n "${ENVPARITY_DEMO_KEEP:-}" ]]; then
  printf '\nThe fleet keeps running. Try (with the query certificate):\n  ENVPARITY_SERVER=%s ENVPARITY_TLS_CA=%s ENVPARITY_QUERY_TLS_CERT=%s ENVPARITY_QUERY_TLS_KEY=%s %s/envparity diff dev staging -o json\n' \
    "$server" "$ENVPARITY_TLS_CA" "$ENVPARITY_QUERY_TLS_CERT" "$ENVPARITY_QUERY_TLS_KEY" "$bin"
  read -r -p "Press Enter to stop everything… " _
fi
