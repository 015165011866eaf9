#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ one after another, each for a set
# time, and prints executions, speed, corpus size and crashes per target.
# Not part of CI (too long); docs/security.md records the last full run.
#
#   scripts/fuzz.sh                  # every target, 600 s each
#   scripts/fuzz.sh 60               # every target, 60 s each
#   scripts/fuzz.sh 600 render       # some targets
#   nice -n 19 scripts/fuzz.sh 600   # on a shared machine
#
# cargo-fuzz needs nightly features (sanitizers, -Z flags); this uses the
# stable toolchain with RUSTC_BOOTSTRAP=1 rather than installing another.
# New corpus entries go to fuzz/corpus/TARGET (the committed seeds in
# fuzz/seeds/TARGET are read, never written); crashers go to
# fuzz/artifacts/TARGET with the run's log (fuzz.log). A crasher is
# reproduced with `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET FILE` and
# minimized with `RUSTC_BOOTSTRAP=1 cargo fuzz tmin TARGET FILE`.
# Exits 1 when any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'fuzz.sh: %s\n' "$*"; }

seconds=${1:-600}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds == 0)); then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if (($# > 0)); then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

say "building ${targets[*]}"
for t in "${targets[@]}"; do
  cargo fuzz build "$t"
done

summary=()
crashed=0
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  artifacts=fuzz/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  dirs=("$corpus")
  [[ -d fuzz/seeds/$t ]] && dirs+=("fuzz/seeds/$t")
  log=$artifacts/fuzz.log
  marker=$(mktemp)
  say "running $t for ${seconds}s (log: $log)"
  status=0
  cargo fuzz run "$t" "${dirs[@]}" -- \
    -max_total_time="$seconds" -timeout=60 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n1)
  files=$(find "$corpus" -type f | wc -l)
  crashes=$(find "$artifacts" -type f -newer "$marker" \
    \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  rm -f "$marker"
  if ((status != 0 && crashes == 0)); then
    # libFuzzer stopped without leaving an artifact: count it, show why.
    crashes=1
    tail -n 20 "$log" >&2
  fi
  ((crashes == 0)) || crashed=1
  summary+=("$(printf '%-10s %8ss %14s %10s %8s %10s %8s' "$t" "$seconds" \
    "${execs:-?}" "${speed:-?}" "$files" "${rss:-?}" "$crashes")")
done

printf '\n%-10s %9s %14s %10s %8s %10s %8s\n' TARGET TIME EXECS EXEC/S CORPUS RSS_MB CRASHES
printf '%s\n' "${summary[@]}"
exit "$crashed"
