#!/usr/bin/env bash
# Checks the deployment assets in deploy/ the way their users will use them,
# offline. Called by scripts/test.sh after the build; needs the binaries in
# target/debug and what scripts/setup.sh installs (yamllint, systemd-analyze,
# docker-compose, kubectl, haproxy, curl, and a venv with kubernetes-validate
# and Helm's SDK).
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

# fails_with MESSAGE COMMAND…: a negative control that must also say why, for
# use inside `check`: COMMAND must fail, and its output contain MESSAGE.
fails_with() {
  local message=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "a broken input passed: the check cannot fail"
    return 1
  fi
  [[ "$out" == *"$message"* ]] || { echo "refused, but without \"$message\": $out"; return 1; }
}

for tool in "$bin/envparity-agent" "$bin/envparity" "$python" /usr/bin/yamllint /usr/bin/systemd-analyze \
  /usr/bin/docker-compose "$venv/bin/kubernetes-validate" /usr/sbin/haproxy /usr/bin/curl; do
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
check "helm template (agent.runtime=containerd) matches tests/deploy/helm-rendered/containerd.yaml" \
  render containerd tests/deploy/helm-values-containerd.yaml envparity
check "helm template (agent.runtime=podman) matches tests/deploy/helm-rendered/podman.yaml" \
  render podman tests/deploy/helm-values-podman.yaml envparity
check "helm template (aggregator.postgres: replicas) matches tests/deploy/helm-rendered/postgres.yaml" \
  render postgres tests/deploy/helm-values-postgres.yaml envparity
check "helm template refuses an unknown agent.runtime" \
  fails_with 'agent.runtime "cri-o": choose docker, podman or containerd' \
  "$python" "$tools" helm-render deploy/helm/envparity <(echo 'agent: {runtime: cri-o}') envparity envparity
refused "helm template without agent.environment" \
  "$python" "$tools" helm-render deploy/helm/envparity <(echo 'agent: {environment: ""}') envparity envparity
check "helm template refuses a malformed agent.journalMaxBytes" \
  fails_with 'agent.journalMaxBytes "64MB": use bytes, or a KiB, MiB or GiB suffix' \
  "$python" "$tools" helm-render deploy/helm/envparity <(echo 'agent: {journalMaxBytes: 64MB}') envparity envparity
# The plain-text escape hatch renders (validated and check-config'd below, not
# committed); turning TLS off without it, or asking for both, does not.
render_uncommitted() { # render_uncommitted NAME VALUES
  "$python" "$tools" helm-render deploy/helm/envparity "$2" envparity envparity >"$work/$1.yaml"
}
check "helm template (insecurePlaintext escape hatch)" render_uncommitted plaintext tests/deploy/helm-values-plaintext.yaml
check "helm template refuses tls.enabled=false without insecurePlaintext" \
  fails_with "tls.enabled=false needs insecurePlaintext=true" \
  "$python" "$tools" helm-render deploy/helm/envparity <(echo 'tls: {enabled: false}') envparity envparity
check "helm template refuses TLS together with insecurePlaintext" \
  fails_with "tls.enabled and insecurePlaintext are both true" \
  "$python" "$tools" helm-render deploy/helm/envparity <(echo 'insecurePlaintext: true') envparity envparity

# ---- YAML: every file parses and is tidy ---------------------------------------
mapfile -t all_yaml < <(find deploy -name '*.y*ml' -not -path 'deploy/helm/envparity/templates/*' | sort)
check "every YAML file under deploy/ parses (${#all_yaml[@]} files)" "$python" "$tools" parse "${all_yaml[@]}"
# The deployment assets of this check (deploy/prometheus is checked by promtool).
mapfile -t yaml_files < <(find deploy -name '*.yaml' -not -path 'deploy/helm/envparity/templates/*' | sort)
yaml_files+=(deploy/.yamllint tests/deploy/helm-values-*.yaml "$rendered"/*.yaml "$work/plaintext.yaml")
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
check "deploy/kubernetes/containerd/haproxy.cfg is deploy/cri-proxy/haproxy.cfg" \
  diff -u deploy/cri-proxy/haproxy.cfg deploy/kubernetes/containerd/haproxy.cfg
# The components (the runtimes', PostgreSQL's), as docs/deploy.md has a user
# include them: an overlay whose resources: is deploy/kubernetes and
# components: the one.
kustomize_component() { # kustomize_component COMPONENT
  local overlay=$work/overlay-$1
  mkdir -p "$overlay"
  printf 'resources:\n  - %s\ncomponents:\n  - %s\n' \
    "$(realpath --relative-to="$overlay" deploy/kubernetes)" \
    "$(realpath --relative-to="$overlay" "deploy/kubernetes/$1")" >"$overlay/kustomization.yaml"
  kubectl kustomize "$overlay" >"$work/kustomized-$1.yaml"
}
for component in containerd podman postgres; do
  check "kubectl kustomize: deploy/kubernetes with the $component component" kustomize_component "$component"
done
# PostgreSQL's: three replicas on the database, no volume claim, a budget.
kustomized_postgres() {
  local f=$work/kustomized-postgres.yaml
  grep -q '^  replicas: 3$' "$f" && ! grep -q '^kind: PersistentVolumeClaim' "$f" &&
    grep -q '^kind: PodDisruptionBudget' "$f" && grep -q 'store = "postgres://' "$f" &&
    ! grep -q 'data_dir' "$f"
}
check "kustomized PostgreSQL component: 3 replicas, the store a database, a PodDisruptionBudget" kustomized_postgres
# The ServiceMonitor is a prometheus-operator CRD: no schema ships with
# kubernetes-validate, so it is checked by yamllint only.
"$python" "$tools" split-kinds "$work/full.yaml" "$work/full-split" ServiceMonitor >/dev/null
for version in "${k8s_versions[@]}"; do
  check "kubernetes-validate --strict $version: kustomized deploy/kubernetes" \
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$work/kustomized.yaml" \
    "$work/kustomized-containerd.yaml" "$work/kustomized-podman.yaml" "$work/kustomized-postgres.yaml"
  check "kubernetes-validate --strict $version: Helm renders" \
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$work/default.yaml" "$work"/full-split/*.yaml \
    "$work/plaintext.yaml" "$work/containerd.yaml" "$work/podman.yaml" "$work/postgres.yaml"
done
sed 's/readOnlyRootFilesystem: true/readOnlyRootFilesytem: true/' deploy/kubernetes/aggregator.yaml >"$work/typo.yaml"
refused "kubernetes-validate on a misspelt field" \
  "$venv/bin/kubernetes-validate" --strict --quiet -k "${k8s_versions[0]}" "$work/typo.yaml"

# ---- Compose ---------------------------------------------------------------------
check "docker-compose config deploy/compose/compose.yaml" docker-compose -f deploy/compose/compose.yaml config -q
sed 's/service_completed_successfully/service_finished/' deploy/compose/compose.yaml >"$work/compose.yaml"
refused "docker-compose config on a bad depends_on condition" docker-compose -f "$work/compose.yaml" config -q
# The certs service's script, run for real (its volumes under a temp dir, the
# built envparity on PATH): it must make every TLS file a service names, and
# keep the CA key out of the shared tls volume. `chown` needs root.
compose_certs() { # compose_certs COMPOSE-FILE
  local script dir=$work/compose-pki file missing=0
  script=$("$python" "$tools" compose-script "$1" certs) || return 1
  rm -rf "$dir" && mkdir -p "$dir/ca" "$dir/tls"
  script=${script// \/ca/ $dir\/ca}
  script=${script// \/tls/ $dir\/tls}
  ((EUID == 0)) || script=${script//chown -R 65532:65532/true}
  PATH="$bin:$PATH" sh -c "$script" >/dev/null || return 1
  while read -r file; do
    [[ -f "$dir/tls/${file##*/}" ]] || { echo "$1 names $file, which the certs service does not make"; missing=1; }
  done < <(grep -Eo '/run/envparity/tls/[A-Za-z0-9._-]+' "$1" | sort -u)
  [[ ! -e "$dir/tls/ca-key.pem" ]] || { echo "the CA key is in the shared tls volume"; missing=1; }
  ((missing == 0))
}
check "compose: the certs service makes every TLS file the services name" compose_certs deploy/compose/compose.yaml
sed 's#/run/envparity/tls/agent-dev-1.pem#/run/envparity/tls/agent-dev-2.pem#' deploy/compose/compose.yaml >"$work/compose-cert.yaml"
refused "compose certs check on a service naming a certificate no one makes" compose_certs "$work/compose-cert.yaml"

# The PostgreSQL variant: merges with the demo, pins its database image, and
# its password service (run for real) leaves one owner-only copy for
# PostgreSQL's user and one for the aggregators', the same, kept on a rerun.
check "docker-compose config: compose.yaml with compose.postgres.yaml" \
  docker-compose -f deploy/compose/compose.yaml -f deploy/compose/compose.postgres.yaml config -q
compose_postgres_pinned() {
  grep -Eq '^    image: postgres:[^@ ]+@sha256:[0-9a-f]{64}$' "$1"
}
check "compose.postgres.yaml pins PostgreSQL by digest" compose_postgres_pinned deploy/compose/compose.postgres.yaml
sed -E 's/^(    image: postgres:[^@ ]+)@sha256:[0-9a-f]+$/\1/' deploy/compose/compose.postgres.yaml >"$work/compose-pg-unpinned.yaml"
refused "the PostgreSQL pin check on an unpinned image" compose_postgres_pinned "$work/compose-pg-unpinned.yaml"
compose_store_password() { # compose_store_password COMPOSE-FILE
  local script dir=$work/compose-store first
  script=$("$python" "$tools" compose-script "$1" store-password) || return 1
  rm -rf "$dir" && mkdir -p "$dir/postgres" "$dir/aggregator"
  script=${script//\/postgres\/password/$dir\/postgres\/password}
  script=${script//\/aggregator\/password/$dir\/aggregator\/password}
  ((EUID == 0)) || script=${script//chown /true }
  sh -c "$script" || return 1
  first=$(cat "$dir/aggregator/password")
  [[ "$first" =~ ^[0-9a-f]{64}$ ]] || { echo "the password is not 64 hex digits: $first"; return 1; }
  cmp -s "$dir/postgres/password" "$dir/aggregator/password" || { echo "the two copies differ"; return 1; }
  [[ "$(stat -c %a "$dir/postgres/password") $(stat -c %a "$dir/aggregator/password")" == "600 600" ]] ||
    { echo "modes: $(stat -c %a "$dir"/*/password)"; return 1; }
  if ((EUID == 0)); then
    [[ "$(stat -c %u "$dir/postgres/password") $(stat -c %u "$dir/aggregator/password")" == "999 65532" ]] ||
      { echo "owners: $(stat -c %u "$dir"/*/password)"; return 1; }
  fi
  sh -c "$script" && [[ "$(cat "$dir/aggregator/password")" == "$first" ]] ||
    { echo "a second run changed the password"; return 1; }
}
check "compose: the store-password service makes both owner-only copies, once" \
  compose_store_password deploy/compose/compose.postgres.yaml

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
# made here, mode 0600, as the binaries require, and the TLS files come from
# a real PKI made by `envparity certs`, put where each deployment puts them.
croot=$work/root
mkdir -p "$croot/etc/envparity/tls" "$croot/run/envparity/secret" "$croot/run/envparity/key" \
  "$croot/run/envparity/secrets" "$croot/var/lib/envparity" "$croot/host/etc"
for key in "$croot/etc/envparity/fleet.key" "$croot/run/envparity/secret/fleet.key"; do
  head -c 32 /dev/urandom >"$key"
done
printf 'https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\n' >"$croot/run/envparity/secrets/team-chat"
printf '0123456789abcdef0123456789abcdef\n' >"$croot/run/envparity/secrets/on-call"
printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)" >"$croot/run/envparity/secrets/audit"
chmod 600 "$croot"/etc/envparity/fleet.key "$croot"/run/envparity/secret/fleet.key "$croot"/run/envparity/secrets/*
cp deploy/policy.example.toml "$croot/etc/envparity/policy.toml"
relocate() { sed -E "s#^([a-z_]+ *= *\")/#\\1$croot/#" "$1" >"$2"; }
# agent_env: the literal env of the agent's container in the manifests at hand.
agent_env=()
agent_check() {
  env -i PATH="$PATH" ${host_id:+ENVPARITY_HOST_ID="$host_id"} "${agent_env[@]}" "$bin/envparity-agent" --config "$1" check-config
}
aggregator_check() { env -i PATH="$PATH" "$bin/envparity" check-config --config "$1"; }

# The fleet PKI, as docs/deploy.md makes it: the server certificate names
# every address the example agents use (deploy/config/agent.toml, the
# kustomization's Service, the chart's Service in both rendered namespaces)
# and localhost for port-forwarding; agent certificates for two hosts, and a
# query certificate.
pki=$work/pki
check "envparity certs: a fleet CA, server, agent and query certificates" \
  "$bin/envparity" certs --dir "$pki" --server-name envparity-aggregator.example.internal \
  --server-name envparity-aggregator.envparity.svc --server-name envparity-aggregator.monitoring.svc \
  --server-name localhost --agent host-1 --agent host-2 --client ops
# systemd hosts (docs/deploy.md): /etc/envparity/tls, this host's agent pair
# renamed agent.pem and agent-key.pem.
install -m 0644 "$pki/ca.pem" "$pki/server.pem" "$croot/etc/envparity/tls/"
install -m 0600 "$pki/server-key.pem" "$croot/etc/envparity/tls/"
install -m 0644 "$pki/agent-host-1.pem" "$croot/etc/envparity/tls/agent.pem"
install -m 0600 "$pki/agent-host-1-key.pem" "$croot/etc/envparity/tls/agent-key.pem"
# Kubernetes: the Secret envparity-agent-tls holds the CA and every node's
# pair (kubectl create secret generic … --from-file=pki/ca.pem
# --from-file=pki/agent-….pem); with the chart's agent hostDir, each node
# holds its own ca.pem, agent.pem and agent-key.pem.
mkdir -p "$work/agent-secret" "$work/node-dir"
cp "$pki/ca.pem" "$pki"/agent-host-*.pem "$work/agent-secret/"
cp "$pki/ca.pem" "$work/node-dir/ca.pem"
cp "$pki/agent-host-1.pem" "$work/node-dir/agent.pem"
cp "$pki/agent-host-1-key.pem" "$work/node-dir/agent-key.pem"

# The agent DaemonSet's init container, run for real on node host-1: it copies
# the fleet key, the CA and this node's agent pair from the Secret (or the
# node's directory) into /run/envparity/{key,tls}, where the agent reads them,
# and hands the journal's hostPath /var/lib/envparity-agent (made by the
# kubelet, root's, mode 0755) to the agent's user, mode 0700. `install -o
# 65532` needs root; elsewhere it runs without the chown. Every path is moved
# under the throwaway root; a script naming any other absolute path is not run.
state=$croot/var/lib/envparity-agent
k8s_init() { # k8s_init MANIFESTS SOURCE-DIR NODE
  local script
  script=$("$python" "$tools" init-script "$1" credentials) || return 1
  rm -rf "$croot/run/envparity/agent-tls-source" "$croot/run/envparity/tls" "$croot/run/envparity/key" "$state"
  mkdir -p "$croot/run/envparity/tls" "$croot/run/envparity/key"
  mkdir -m 0755 "$state"
  cp -a "$2" "$croot/run/envparity/agent-tls-source"
  script=${script//\/run\/envparity\//$croot\/run\/envparity\/}
  script=${script//\/var\/lib\/envparity-agent/$state}
  # Commands that change files, naming an absolute path left outside the root.
  if grep -E '^ *(install|mkdir|chown|chmod|cp|mv|rm|ln|touch) ' <<<"${script//"$croot"/ROOT}" |
    grep -E '(^|[ "=])/'; then
    echo "the init script changes the paths above, outside the throwaway root: not run"
    return 1
  fi
  ((EUID == 0)) || script=${script//-o 65532 -g 65532 /}
  NODE_NAME=$3 sh -c "$script"
}
# The journal's directory after the init container: the agent's alone.
state_dir_ready() {
  local want=700 got
  ((EUID == 0)) && want="700 65532:65532"
  got=$(stat -c '%a %u:%g' "$state") || return 1
  ((EUID == 0)) || got=${got%% *}
  [[ "$got" == "$want" ]] || { echo "$state: $got, wanted $want"; return 1; }
}
# check-config of a Kubernetes agent config: the journal is on disk, in the
# directory the init container prepared.
agent_check_journal() { # agent_check_journal CONFIG
  local out
  out=$(agent_check "$1") || { printf '%s\n' "$out"; return 1; }
  grep -Eq "^ *state_dir +$state  \(" <<<"$out" ||
    { printf 'the journal is not in %s:\n%s\n' "$state" "$out"; return 1; }
}
# The agent reads RUNTIME (check-config says so, for containerd and Podman)
# at a socket the manifests wire as docs/deploy.md says (deploy_tools.py
# socket-wiring: on containerd, only through the allowlist container).
socket_wired() { # socket_wired CONFIG MANIFESTS RUNTIME
  local out socket
  out=$(agent_check "$1") || { printf '%s\n' "$out"; return 1; }
  if [[ $3 != docker ]] && ! grep -Eq "^ *runtime +$3 " <<<"$out"; then
    printf 'the agent does not read %s:\n%s\n' "$3" "$out"
    return 1
  fi
  socket=$(awk '$1 == "runtime_socket" && $2 ~ /^\// { print $2 }' <<<"$out")
  [[ -n $socket ]] || socket=$(awk '$1 == "docker_host" { sub("^unix://", "", $2); print $2 }' <<<"$out")
  "$python" "$tools" socket-wiring "$2" "${socket#"$croot"}" deploy/cri-proxy/haproxy.cfg
}
# Runs the CRI allowlist of MANIFESTS as its container would (the ConfigMap's
# haproxy.cfg, the container's env, its paths moved under a throwaway dir)
# with no runtime behind it: a write call must be refused by the allowlist
# itself (gRPC status 7), a read call passed on (503: no runtime there).
allowlist_refuses_writes() { # allowlist_refuses_writes MANIFESTS
  local dir=$work/allowlist env listen cri pid write read code=0
  rm -rf "$dir" && mkdir -p "$dir"
  "$python" "$tools" configmap-file "$1" envparity-agent-cri-allowlist haproxy.cfg >"$dir/haproxy.cfg" || return 1
  env=$("$python" "$tools" container-env "$1" cri-allowlist) || return 1
  listen=$(sed -n 's/^ENVPARITY_CRI_LISTEN=//p' <<<"$env")
  cri=$(sed -n 's/^ENVPARITY_CRI_SOCKET=//p' <<<"$env")
  [[ -n $listen && -n $cri ]] || { echo "the cri-allowlist container sets no ENVPARITY_CRI_LISTEN or ENVPARITY_CRI_SOCKET"; return 1; }
  mkdir -p "$dir$(dirname "$listen")"
  ENVPARITY_CRI_LISTEN=$dir$listen ENVPARITY_CRI_SOCKET=$dir$cri haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do [[ -S $dir$listen ]] && break; sleep 0.1; done
  grpc() {
    curl -s --max-time 5 --http2-prior-knowledge --unix-socket "$dir$listen" -X POST \
      -H 'content-type: application/grpc' -D - -o /dev/null "http://localhost/$1"
  }
  write=$(grpc runtime.v1.RuntimeService/RemovePodSandbox)
  read=$(grpc runtime.v1.RuntimeService/ListContainers)
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  [[ $write == *"grpc-status: 7"* ]] || { echo "RemovePodSandbox was not refused: ${write:-no answer}"; code=1; }
  [[ $read == "HTTP/2 503"* ]] || { echo "ListContainers was not passed on to the runtime: ${read:-no answer}"; code=1; }
  ((code == 0)) || cat "$dir/haproxy.log"
  return $code
}

# The agent certificate names the host id the agent reports as.
cert_names_host() { # cert_names_host CERT HOST-ID
  local subject
  subject=$(openssl x509 -in "$1" -noout -subject -nameopt RFC2253) || return 1
  [[ "$subject" == *"CN=$2"* && "$subject" == *"OU=envparity-agent"* ]] ||
    { echo "$1: subject $subject, wanted CN=$2 and OU=envparity-agent"; return 1; }
}

"$python" "$tools" configmap-file "$work/default.yaml" envparity-agent agent.toml >"$work/helm-agent.toml"
"$python" "$tools" configmap-file "$work/full.yaml" envparity-agent agent.toml >"$work/helm-full-agent.toml"
"$python" "$tools" configmap-file "$work/plaintext.yaml" envparity-agent agent.toml >"$work/helm-plaintext-agent.toml"
"$python" "$tools" configmap-file "$work/containerd.yaml" envparity-agent agent.toml >"$work/helm-containerd-agent.toml"
"$python" "$tools" configmap-file "$work/podman.yaml" envparity-agent agent.toml >"$work/helm-podman-agent.toml"
"$python" "$tools" configmap-file "$work/default.yaml" envparity-aggregator aggregator.toml >"$work/helm-aggregator.toml"
"$python" "$tools" configmap-file "$work/full.yaml" envparity-aggregator aggregator.toml >"$work/helm-full-aggregator.toml"
"$python" "$tools" configmap-file "$work/plaintext.yaml" envparity-aggregator aggregator.toml >"$work/helm-plaintext-aggregator.toml"

host_id=""
relocate deploy/config/agent.toml "$work/agent-1.toml"
check "envparity-agent check-config deploy/config/agent.toml" agent_check_journal "$work/agent-1.toml"
# On Kubernetes each config is checked with the files its own init container
# put in place, as the agent on node host-1 (ENVPARITY_HOST_ID = the node name).
host_id=host-1
i=1
for pair in "deploy/kubernetes/config/agent.toml $work/kustomized.yaml $work/agent-secret" \
  "helm-agent.toml $work/default.yaml $work/agent-secret" \
  "helm-full-agent.toml $work/full.yaml $work/node-dir" \
  "helm-plaintext-agent.toml $work/plaintext.yaml $work/agent-secret" \
  "deploy/kubernetes/config/agent.toml $work/kustomized-containerd.yaml $work/agent-secret" \
  "deploy/kubernetes/config/agent.toml $work/kustomized-podman.yaml $work/agent-secret" \
  "helm-containerd-agent.toml $work/containerd.yaml $work/agent-secret" \
  "helm-podman-agent.toml $work/podman.yaml $work/agent-secret"; do
  read -r config manifests source <<<"$pair"
  [[ $config == helm-* ]] && config=$work/$config
  name=${config#"$work"/}
  i=$((i + 1))
  relocate "$config" "$work/agent-$i.toml"
  mapfile -t agent_env < <("$python" "$tools" container-env "$manifests" agent)
  check "agent init container of ${manifests#"$work"/} on node host-1" k8s_init "$manifests" "$source" host-1
  if grep -q '^tls_cert' "$work/agent-$i.toml"; then
    check "the agent certificate it installed names host-1 as an agent (CN, OU): ${manifests#"$work"/}" \
      cert_names_host "$croot/run/envparity/tls/agent.pem" host-1
  fi
  check "the journal's directory it prepared is the agent's, mode 0700: ${manifests#"$work"/}" state_dir_ready
  check "envparity-agent check-config $name (journal in /var/lib/envparity-agent)${agent_env[*]:+ with ${agent_env[*]}}" \
    agent_check_journal "$work/agent-$i.toml"
  runtime=docker
  [[ $manifests == *containerd* ]] && runtime=containerd
  [[ $manifests == *podman* ]] && runtime=podman
  check "the agent of ${manifests#"$work"/} reads $runtime, through a socket wired as docs/deploy.md says" \
    socket_wired "$work/agent-$i.toml" "$manifests" "$runtime"
  if [[ $runtime == containerd ]]; then
    check "the CRI allowlist of ${manifests#"$work"/}, run as its container would: a write refused, a read passed on" \
      allowlist_refuses_writes "$manifests"
  fi
done
agent_env=()
# Negative controls: an agent container that also mounts containerd's socket
# directory, and an allowlist that lets every call through.
"$python" - "$work/containerd.yaml" >"$work/containerd-agent-mounts-socket.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "DaemonSet":
        for c in d["spec"]["template"]["spec"]["containers"]:
            if c["name"] == "agent":
                c["volumeMounts"].append({"name": "containerd-socket-dir", "mountPath": "/host/run/containerd", "readOnly": True})
yaml.safe_dump_all(docs, sys.stdout)
PY
check "the wiring check on an agent container that mounts containerd's socket directory fails" \
  fails_with "the agent container mounts the node's /run/containerd" \
  "$python" "$tools" socket-wiring "$work/containerd-agent-mounts-socket.yaml" /run/envparity/cri/cri.sock deploy/cri-proxy/haproxy.cfg
sed '/http-request return/d' "$work/containerd.yaml" >"$work/containerd-allow-all.yaml"
check "the CRI allowlist check on an allowlist without its refusal fails" \
  fails_with "RemovePodSandbox was not refused" allowlist_refuses_writes "$work/containerd-allow-all.yaml"
host_id=""
# A node whose certificate is not in the Secret: the init container stops, naming it.
check "agent init container on a node without a certificate in the Secret fails, naming it" \
  fails_with "has no agent-host-9.pem for node host-9" k8s_init "$work/kustomized.yaml" "$work/agent-secret" host-9
# Without its `install -d`, the journal's directory stays the kubelet's; and the
# harness runs no script that names a path it did not move under its root.
init_then_state() { k8s_init "$1" "$work/agent-secret" host-1 && state_dir_ready; }
sed '/install -d .*\/var\/lib\/envparity-agent$/d' "$work/kustomized.yaml" >"$work/kustomized-no-state.yaml"
check "the journal's directory check on an init container that leaves it to the kubelet fails" \
  fails_with "wanted 700" init_then_state "$work/kustomized-no-state.yaml"
sed 's#install -d \(.*\) /var/lib/envparity-agent$#install -d \1 /var/lib/elsewhere#' "$work/kustomized.yaml" >"$work/kustomized-elsewhere.yaml"
check "agent init container naming a path outside the throwaway root is not run" \
  fails_with "outside the throwaway root: not run" k8s_init "$work/kustomized-elsewhere.yaml" "$work/agent-secret" host-1

# Broken ones: exit 2 and a message naming the problem.
broken_agent() { # broken_agent NAME EXPECTED-MESSAGE SED-EXPRESSION
  local name=$1 message=$2 out status
  sed -E "$3" "$work/agent-1.toml" >"$work/agent-$name.toml"
  out=$(agent_check "$work/agent-$name.toml" 2>&1)
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
check "envparity-agent check-config refuses a missing TLS key file" \
  broken_agent missing-tls-key 'cannot read the client key' 's#^(tls_key = ".*)agent-key\.pem"#\1missing-key.pem"#'
check "envparity-agent check-config refuses plain text to a non-loopback aggregator" \
  broken_agent plaintext 'is plain text (no TLS)' 's#^aggregator = .*#aggregator = "http://10.0.0.5:7600"#; /^tls_/d'
check "envparity-agent check-config refuses plain text on a non-loopback address with insecure_plaintext only" \
  broken_agent plaintext-loopback-only 'refusing plain text (no TLS) on non-loopback' \
  's#^aggregator = .*#aggregator = "http://10.0.0.5:7600"\ninsecure_plaintext = true#; /^tls_/d'
check "envparity-agent check-config refuses TLS files with an http:// aggregator" \
  broken_agent tls-with-http 'is not https://' 's#^aggregator = "https://#aggregator = "http://#'

# The aggregator. On Kubernetes its Secret is mounted at /run/envparity/tls.
mkdir -p "$croot/run/envparity/tls"
install -m 0644 "$pki/ca.pem" "$pki/server.pem" "$croot/run/envparity/tls/"
install -m 0600 "$pki/server-key.pem" "$croot/run/envparity/tls/"
i=0
for config in deploy/config/aggregator.toml deploy/kubernetes/config/aggregator.toml \
  "$work/helm-aggregator.toml" "$work/helm-full-aggregator.toml" "$work/helm-plaintext-aggregator.toml"; do
  i=$((i + 1))
  relocate "$config" "$work/aggregator-$i.toml"
  check "envparity check-config --config ${config#"$work"/}" aggregator_check "$work/aggregator-$i.toml"
done
printf 'listen = "0.0.0.0:7600"\nstale_afterr = "90s"\n' >"$work/aggregator-broken.toml"
refused "envparity check-config on an unknown key" aggregator_check "$work/aggregator-broken.toml"
broken_aggregator() { # broken_aggregator NAME EXPECTED-MESSAGE SED-EXPRESSION
  local name=$1 message=$2 out status
  sed -E "$3" "$work/aggregator-1.toml" >"$work/aggregator-$name.toml"
  out=$(aggregator_check "$work/aggregator-$name.toml" 2>&1)
  status=$?
  [[ $status == 2 && "$out" == *"$message"* ]] ||
    { echo "exit $status, wanted 2 and \"$message\": $out"; return 1; }
}
check "envparity check-config refuses a missing TLS key file" \
  broken_aggregator missing-tls-key "TLS key $croot/etc/envparity/tls/missing-key.pem" 's#^(tls_key = ".*)server-key\.pem"#\1missing-key.pem"#'
check "envparity check-config refuses to serve without TLS" \
  broken_aggregator no-tls 'is plain text (no TLS)' '/^tls_/d'
check "envparity check-config refuses plain text on 0.0.0.0 with insecure_plaintext only" \
  broken_aggregator plaintext-loopback-only 'refusing plain text (no TLS) on non-loopback listen address 0.0.0.0:7600' \
  '/^tls_/d; 1i insecure_plaintext = true'
check "envparity check-config refuses TLS files together with insecure_plaintext" \
  broken_aggregator tls-and-plaintext 'both TLS files and --insecure-plaintext are set' '1i insecure_plaintext = true'

if ((${#failures[@]})); then
  say "${#failures[@]} check(s) FAILED: ${failures[*]}"
  exit 1
fi
say "all deploy checks passed"
