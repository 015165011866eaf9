#!/usr/bin/env bash
# Checks the deployment assets in deploy/ the way their users will use them,
# offline. Called by scripts/test.sh after the build; needs the binaries in
# target/debug and what scripts/setup.sh installs (yamllint, systemd-analyze,
# docker-compose, kubectl, and a venv with kubernetes-validate and Helm's SDK).
#
#   tests/deploy/check.sh
#   ENVPARITY_BLESS=1 tests/deploy/check.sh   # rewrite the committed Helm renders
#
# Each check prints `ok` or `FAILED` with the reason; the script exits 1 if
# any failed. Several run a deliberately broken input too (a negative
# control): a check that cannot fail proves nothing.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
repo=$(pwd -P)
bin=${ENVPARITY_BIN_DIR:-$repo/target/debug}
venv=${ENVPARITY_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/envparity/deploy-venv}
python=$venv/bin/python
tools=$repo/tests/deploy/deploy_tools.py
rendered=$repo/tests/deploy/helm-rendered
# The Kubernetes versions manifests are validated against: the oldest the
# chart supports (gRPC probes are GA in 1.27) and the newest kubernetes-validate
# 1.37.0 ships.
k8s_versions=(1.27.0 1.37.0)

say() { printf 'deploy-check: %s\n' "$*"; }
failures=()
# check NAME COMMAND…: runs COMMAND, prints its output only when it fails.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    say "ok      $name"
  else
    say "FAILED  $name"
    printf '%s\n' "$out" | sed 's/^/    /'
    failures+=("$name")
  fi
}
# refused NAME COMMAND…: the negative control: COMMAND must fail.
refused() {
  local name=$1
  shift
  if "$@" >/dev/null 2>&1; then
    say "FAILED  $name (a broken input passed: the check cannot fail)"
    failures+=("$name")
  else
    say "ok      $name (refused, as it must be)"
  fi
}

for tool in "$bin/envparity-agent" "$bin/envparity" "$python" /usr/bin/yamllint /usr/bin/systemd-analyze \
  /usr/bin/docker-compose "$venv/bin/kubernetes-validate"; do
  [[ -x "$tool" ]] || { say "error: $tool is missing: run scripts/setup.sh (and cargo build)"; exit 1; }
done
command -v kubectl >/dev/null || { say "error: kubectl is missing: run scripts/setup.sh"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/envparity-deploy.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---- Helm: render the chart with Helm's own engine ---------------------------
# Default values, and values that switch on every optional part. The renders
# are committed (tests/deploy/helm-rendered/) so a chart change shows its
# effect in review; a render that differs from them fails.
render() { # render NAME VALUES NAMESPACE [KEY=FILE…]
  local name=$1 values=$2 namespace=$3
  shift 3
  "$python" "$tools" helm-render deploy/helm/envparity "$values" envparity "$namespace" "$@" >"$work/$name.yaml" || return 1
  if [[ -n "${ENVPARITY_BLESS:-}" ]]; then
    mkdir -p "$rendered" && cp "$work/$name.yaml" "$rendered/$name.yaml"
  fi
  diff -u "$rendered/$name.yaml" "$work/$name.yaml" ||
    { echo "the chart renders differently from $rendered/$name.yaml: ENVPARITY_BLESS=1 $0 updates it"; return 1; }
}
check "helm lint deploy/helm/envparity" "$python" "$tools" helm-lint deploy/helm/envparity
check "helm template (default values) matches tests/deploy/helm-rendered/default.yaml" \
  render default deploy/helm/envparity/values.yaml envparity
check "helm template (every option) matches tests/deploy/helm-rendered/full.yaml" \
  render full tests/deploy/helm-values-full.yaml monitoring policy=deploy/policy.example.toml
refused "helm template without agent.environment" \
  "$python" "$tools" helm-render deploy/helm/envparity <(echo 'agent: {environment: ""}') envparity envparity

# ---- YAML: every file parses and is tidy ---------------------------------------
mapfile -t all_yaml < <(find deploy -name '*.y*ml' -not -path 'deploy/helm/envparity/templates/*' | sort)
check "every YAML file under deploy/ parses (${#all_yaml[@]} files)" "$python" "$tools" parse "${all_yaml[@]}"
# The deployment assets of this check (deploy/prometheus is checked by promtool).
mapfile -t yaml_files < <(find deploy -name '*.yaml' -not -path 'deploy/helm/envparity/templates/*' | sort)
yaml_files+=(deploy/.yamllint tests/deploy/helm-values-full.yaml "$rendered/default.yaml" "$rendered/full.yaml")
check "yamllint --strict (${#yaml_files[@]} files)" yamllint --strict -c deploy/.yamllint "${yaml_files[@]}"
printf 'a: [1\n' >"$work/broken.yaml"
refused "yamllint on unparsable YAML" yamllint --strict -c deploy/.yamllint "$work/broken.yaml"
refused "YAML parse on unparsable YAML" "$python" "$tools" parse "$work/broken.yaml"

# ---- Kubernetes: offline validation against the API schemas ------------------
kubectl kustomize deploy/kubernetes >"$work/kustomized.yaml" 2>"$work/kustomize.err" ||
  cat "$work/kustomize.err" >>"$work/kustomized.yaml"
check "kubectl kustomize deploy/kubernetes" test ! -s "$work/kustomize.err"
check "deploy/kubernetes/config/policy.toml is deploy/policy.example.toml" \
  diff -u deploy/policy.example.toml deploy/kubernetes/config/policy.toml
# The ServiceMonitor is a prometheus-operator CRD: no schema ships with
# kubernetes-validate, so it is checked by yamllint only.
"$python" "$tools" split-kinds "$work/full.yaml" "$work/full-split" ServiceMonitor >/dev/null
for version in "${k8s_versions[@]}"; do
  check "kubernetes-validate --strict $version: kustomized deploy/kubernetes" \
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$work/kustomized.yaml"
  check "kubernetes-validate --strict $version: Helm renders" \
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$work/default.yaml" "$work"/full-split/*.yaml
done
sed 's/readOnlyRootFilesystem: true/readOnlyRootFilesytem: true/' deploy/kubernetes/aggregator.yaml >"$work/typo.yaml"
refused "kubernetes-validate on a misspelt field" \
  "$venv/bin/kubernetes-validate" --strict --quiet -k "${k8s_versions[0]}" "$work/typo.yaml"

# ---- Compose ---------------------------------------------------------------------
check "docker-compose config deploy/compose/compose.yaml" docker-compose -f deploy/compose/compose.yaml config -q
sed 's/service_completed_successfully/service_finished/' deploy/compose/compose.yaml >"$work/compose.yaml"
refused "docker-compose config on a bad depends_on condition" docker-compose -f "$work/compose.yaml" config -q

# ---- Dockerfile: pinned by digest, built --locked ----------------------------------
check "deploy/docker/Dockerfile: every FROM pinned by digest, cargo build --locked" \
  "$python" "$tools" dockerfile deploy/docker/Dockerfile
sed -E '0,/^FROM debian:[^@ ]+@sha256:[0-9a-f]+/s//FROM debian:bookworm-slim/' deploy/docker/Dockerfile >"$work/Dockerfile.unpinned"
refused "Dockerfile check on an unpinned FROM" "$python" "$tools" dockerfile "$work/Dockerfile.unpinned"
sed 's/ --locked//' deploy/docker/Dockerfile >"$work/Dockerfile.unlocked"
refused "Dockerfile check on a build without --locked" "$python" "$tools" dockerfile "$work/Dockerfile.unlocked"

# ---- systemd: the units, with the binaries where they name them ---------------------
# A throwaway root holding what the units refer to: the built binaries in
# /usr/local/bin, /bin/kill, and systemd's own units (for the targets).
sysroot=$work/sysroot
mkdir -p "$sysroot/usr/local/bin" "$sysroot/etc/systemd/system" "$sysroot/usr/lib/systemd" "$sysroot/usr/bin"
ln -s usr/bin "$sysroot/bin"
cp -a /usr/lib/systemd/system "$sysroot/usr/lib/systemd/"
cp "$bin/envparity-agent" "$bin/envparity" "$sysroot/usr/local/bin/"
cp /usr/bin/kill "$sysroot/usr/bin/kill"
cp deploy/systemd/*.service "$sysroot/etc/systemd/system/"
verify() { # systemd-analyze prints problems but may still exit 0: any output fails.
  local out
  if out=$(cd "$sysroot" && systemd-analyze verify --root="$sysroot" "$@" 2>&1) && [[ -z "$out" ]]; then
    return 0
  fi
  printf '%s\n' "$out"
  return 1
}
check "systemd-analyze verify envparity-agent.service envparity-aggregator.service" \
  verify envparity-agent.service envparity-aggregator.service
# Hardening stays in place: an exposure above 2.0 (of 10) fails.
for unit in envparity-agent envparity-aggregator; do
  check "systemd-analyze security $unit.service: exposure at most 2.0" \
    systemd-analyze security --offline=true --root="$sysroot" --threshold=20 "$unit.service"
done
sed 's#^ExecStart=/usr/local/bin/envparity-agent#ExecStart=/usr/local/bin/envparity-agentt#' \
  deploy/systemd/envparity-agent.service >"$sysroot/etc/systemd/system/broken-agent.service"
refused "systemd-analyze verify on a unit naming a missing binary" verify broken-agent.service
rm "$sysroot/etc/systemd/system/broken-agent.service"

# ---- check-config: every example configuration, as installed ---------------------
# The examples name absolute paths (/etc/envparity/…, /var/lib/envparity,
# /run/envparity/…); each is checked in a throwaway root holding those files:
# every `key = "/path"` is moved under it. Fleet keys and sink secrets are
# made here, mode 0600, as the binaries require.
croot=$work/root
mkdir -p "$croot/etc/envparity" "$croot/run/envparity/key" "$croot/run/envparity/secrets" \
  "$croot/var/lib/envparity" "$croot/host/etc"
for key in "$croot/etc/envparity/fleet.key" "$croot/run/envparity/key/fleet.key"; do
  head -c 32 /dev/urandom >"$key"
done
printf 'https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\n' >"$croot/run/envparity/secrets/team-chat"
printf '0123456789abcdef0123456789abcdef\n' >"$croot/run/envparity/secrets/on-call"
printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)" >"$croot/run/envparity/secrets/audit"
chmod 600 "$croot"/etc/envparity/fleet.key "$croot"/run/envparity/key/fleet.key "$croot"/run/envparity/secrets/*
cp deploy/policy.example.toml "$croot/etc/envparity/policy.toml"
relocate() { sed -E "s#^([a-z_]+ *= *\")/#\\1$croot/#" "$1" >"$2"; }
agent_check() { env -i PATH="$PATH" "$bin/envparity-agent" --config "$1" check-config; }
aggregator_check() { env -i PATH="$PATH" "$bin/envparity" check-config --config "$1"; }

"$python" "$tools" configmap-file "$work/default.yaml" envparity-agent agent.toml >"$work/helm-agent.toml"
"$python" "$tools" configmap-file "$work/full.yaml" envparity-agent agent.toml >"$work/helm-full-agent.toml"
"$python" "$tools" configmap-file "$work/default.yaml" envparity-aggregator aggregator.toml >"$work/helm-aggregator.toml"
"$python" "$tools" configmap-file "$work/full.yaml" envparity-aggregator aggregator.toml >"$work/helm-full-aggregator.toml"
i=0
for config in deploy/config/agent.toml deploy/kubernetes/config/agent.toml "$work/helm-agent.toml" "$work/helm-full-agent.toml"; do
  i=$((i + 1))
  relocate "$config" "$work/agent-$i.toml"
  check "envparity-agent check-config ${config#"$work"/}" agent_check "$work/agent-$i.toml"
done
# Broken ones: exit 2 and a message naming the problem.
broken_agent() { # broken_agent NAME EXPECTED-MESSAGE SED-EXPRESSION
  local name=$1 message=$2 out status
  sed -E "$3" "$work/agent-1.toml" >"$work/$name.toml"
  out=$(agent_check "$work/$name.toml" 2>&1)
  status=$?
  [[ $status == 2 && "$out" == *"$message"* ]] ||
    { echo "exit $status, wanted 2 and \"$message\": $out"; return 1; }
}
# shellcheck disable=SC2016  # the backquotes are part of the expected message
check "envparity-agent check-config refuses an unknown key" \
  broken_agent unknown-key 'unknown field `heartbeat`' '1i heartbeat = "15s"'
check "envparity-agent check-config refuses a bad duration" \
  broken_agent bad-duration 'invalid duration "soon"' '1i resync_interval = "soon"'
chmod 644 "$croot/etc/envparity/fleet.key"
check "envparity-agent check-config refuses a world-readable key" \
  broken_agent readable-key 'mode 0644' 's/^$//'
chmod 600 "$croot/etc/envparity/fleet.key"

i=0
for config in deploy/config/aggregator.toml deploy/kubernetes/config/aggregator.toml \
  "$work/helm-aggregator.toml" "$work/helm-full-aggregator.toml"; do
  i=$((i + 1))
  relocate "$config" "$work/aggregator-$i.toml"
  check "envparity check-config --config ${config#"$work"/}" aggregator_check "$work/aggregator-$i.toml"
done
printf 'listen = "0.0.0.0:7600"\nstale_afterr = "90s"\n' >"$work/aggregator-broken.toml"
refused "envparity check-config on an unknown key" aggregator_check "$work/aggregator-broken.toml"

if ((${#failures[@]})); then
  say "${#failures[@]} check(s) FAILED: ${failures[*]}"
  exit 1
fi
say "all deploy checks passed"
