#!/usr/bin/env bash
# The whole test suite: machine setup, a locked build of every target, every
# crate's tests (unit, property, end-to-end), the fleet.sh self-test, and a
# check that no test left a process, mount or dir behind. Exits non-zero on
# any failure. Run as root (the e2e tests start dockerd):
#
#   scripts/test.sh                      # everything
#   scripts/test.sh -p envparity-tests   # arguments replace `--workspace` in `cargo test`
#
# ENVPARITY_TEST_THREADS sets libtest's --test-threads (default 2: on a
# 2-core machine the e2e tests are mostly waiting on dockerd, and 2 threads
# took the e2e binary from ~18 s serial to ~9 s; more threads gained nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'test.sh: %s\n' "$*"; }

scripts/setup.sh

say "cargo build --workspace --all-targets --locked"
cargo build --workspace --all-targets --locked

# Every temp dir of this run lives under one short dir (unix socket paths
# must stay under 108 bytes), so leftovers are easy to find and cannot be
# confused with another run's.
run_tmp=$(mktemp -d /tmp/ept.XXXXXX)
# shellcheck disable=SC2317  # runs as the EXIT trap
cleanup() {
  local status=$?
  postgres_stop 2>/dev/null || true
  if [[ -n "${ENVPARITY_E2E_KEEP:-}" ]]; then
    say "kept $run_tmp (ENVPARITY_E2E_KEEP is set)"
  else
    # Whatever is left goes through fleet.sh's tear-down: by pid, umount, rm -rf.
    # shellcheck source=SCRIPTDIR/lib/fleet.sh
    . scripts/lib/fleet.sh
    FLEET_DIR=$run_tmp fleet_stop_all >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap cleanup EXIT

# PostgreSQL 15 for the store tests' second backend (docs/store.md): one
# server for the run under $run_tmp, on a Unix socket only; each test makes
# a database of its own.
# shellcheck source=SCRIPTDIR/lib/postgres.sh
. scripts/lib/postgres.sh
postgres_start "${CARGO_TARGET_DIR:-target}/debug/envparity-test-postgres" "$run_tmp" ||
  { say "FAILED: PostgreSQL did not start"; exit 1; }
export ENVPARITY_TEST_POSTGRES=$postgres_url
say "PostgreSQL for the store tests: $postgres_url (pid $postgres_pid)"

(($# > 0)) || set -- --workspace
threads=${ENVPARITY_TEST_THREADS:-2}
status=0
say "cargo test --locked $* -- --test-threads=$threads"
TMPDIR=$run_tmp cargo test --locked "$@" -- --test-threads="$threads" || status=$?

if [[ "$*" == "--workspace" ]]; then
  # Agents from before delta reports send whole snapshots only: the
  # aggregator must serve them as before.
  say "e2e parity and kinds again, agents sending whole snapshots only (ENVPARITY_E2E_FULL_SNAPSHOTS)"
  ENVPARITY_E2E_FULL_SNAPSHOTS=1 TMPDIR=$run_tmp cargo test --locked -p envparity-tests --test e2e \
    -- --test-threads="$threads" e2e::parity:: e2e::kinds:: || status=$?
  # The store's second backend under everything that uses a store: the API
  # tests and every e2e aggregator on a PostgreSQL database of its own
  # (docs/store.md); the tests of the embedded store itself stay on SQLite.
  say "the API tests again, on PostgreSQL (ENVPARITY_API_STORE=postgres)"
  ENVPARITY_API_STORE=postgres TMPDIR=$run_tmp cargo test --locked -p envparity-aggregator --test api \
    -- --test-threads="$threads" || status=$?
  say "the e2e suite again, every aggregator on PostgreSQL (ENVPARITY_E2E_STORE=postgres)"
  ENVPARITY_E2E_STORE=postgres TMPDIR=$run_tmp cargo test --locked -p envparity-tests --test e2e \
    -- --test-threads="$threads" || status=$?
fi
postgres_stop

say "scripts/test-fleet.sh"
TMPDIR=$run_tmp scripts/test-fleet.sh || status=$?

# deploy/ as its users will use it: units, manifests, chart, Dockerfile, compose, example configs.
say "tests/deploy/check.sh"
TMPDIR=$run_tmp tests/deploy/check.sh || status=$?

# Nothing may outlive the tests.
if pgrep -af -- "$run_tmp"; then
  say "FAILED: the processes above outlived the tests"
  status=1
fi
if grep -F -- "$run_tmp" /proc/self/mountinfo; then
  say "FAILED: the mounts above outlived the tests"
  status=1
fi
if [[ -z "${ENVPARITY_E2E_KEEP:-}" ]] && [[ -n "$(find "$run_tmp" -mindepth 1 -maxdepth 1 -print -quit)" ]]; then
  find "$run_tmp" -mindepth 1 -maxdepth 1
  say "FAILED: the dirs above outlived the tests"
  status=1
fi

if ((status == 0)); then
  say "all tests passed"
else
  say "FAILED (exit $status)"
fi
exit "$status"
