#!/usr/bin/env bash
# Checks scripts/lib/fleet.sh the way the demo uses it: two hosts and a
# registry, an image pushed from one host and pulled on the other with the
# same digest, a container without network, then a stop that leaves no
# process, mount or dir behind. Also stops a fleet whose dockerd was killed.
# Run as root after scripts/setup.sh; scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
check() {
  local what=$1 status
  shift
  # Not `if "$@"`: inside a condition bash ignores `set -e`, even in the check.
  set +e
  (
    set -e
    "$@"
  )
  status=$?
  set -e
  if ((status == 0)); then
    passed=$((passed + 1))
    printf 'test %s ... ok\n' "$what"
  else
    failed=$((failed + 1))
    printf 'test %s ... FAILED\n' "$what"
  fi
}

# Nothing under $1 still runs, is mounted or exists.
nothing_left() {
  local dir=$1
  if pgrep -af -- "$dir"; then echo "processes still mention $dir" >&2; return 1; fi
  if grep -F -- "$dir" /proc/self/mountinfo; then echo "mounts left under $dir" >&2; return 1; fi
  if [[ -e "$dir" ]]; then echo "$dir still exists" >&2; return 1; fi
}

# A full round in a subshell, as a demo script would run; prints its FLEET_DIR.
round_trip() (
  set -euo pipefail
  # shellcheck source=SCRIPTDIR/lib/fleet.sh
  . scripts/lib/fleet.sh
  fleet_start_registry
  fleet_start_host staging
  fleet_start_host production
  echo "$FLEET_DIR" >"$1"
  fleet_make_image staging myapp:1 1.0.0 >/dev/null
  pushed=$(fleet_push staging myapp:1)
  pulled=$(fleet_pull production myapp:1)
  [[ "$pushed" == "$FLEET_REGISTRY/myapp@sha256:"* ]] || { echo "bad digest: $pushed" >&2; exit 1; }
  [[ "$pushed" == "$pulled" ]] || { echo "digests differ: $pushed vs $pulled" >&2; exit 1; }
  fleet_docker production run -d --network none --name shop -e FOO=bar "$FLEET_REGISTRY/myapp:1" >/dev/null
  [[ "$(fleet_docker production exec shop cat /app/version)" == 1.0.0 ]]
  [[ "$(fleet_docker production inspect --format '{{.HostConfig.NetworkMode}}' shop)" == none ]]
  # The EXIT trap stops everything when this subshell ends.
)

# A dockerd killed mid-run leaves containerd, a shim and a container orphaned.
crash() (
  set -euo pipefail
  # shellcheck source=SCRIPTDIR/lib/fleet.sh
  . scripts/lib/fleet.sh
  fleet_start_host crashy
  echo "$FLEET_DIR" >"$1"
  fleet_make_image crashy app:1 1 >/dev/null
  fleet_docker crashy run -d --network none app:1 >/dev/null
  kill -KILL "$(<"$FLEET_DIR/hosts/crashy/pid")"
)

scratch=$(mktemp)
trap 'rm -f "$scratch"' EXIT

check "fleet_sh_pushes_pulls_and_runs_across_two_hosts" round_trip "$scratch"
check "fleet_sh_stop_all_leaves_nothing_behind" nothing_left "$(<"$scratch")"
check "fleet_sh_cleans_up_after_a_killed_dockerd" crash "$scratch"
check "fleet_sh_crashed_host_leaves_nothing_behind" nothing_left "$(<"$scratch")"

echo "fleet.sh: $passed passed, $failed failed"
((failed == 0))
