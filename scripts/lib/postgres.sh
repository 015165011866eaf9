# shellcheck shell=bash
# A PostgreSQL 15 server for one script's run (scripts/test.sh,
# scripts/bench.sh), started by the harness's own envparity-test-postgres
# (tests/src/postgres.rs): initdb as the postgres user, a Unix socket only,
# in a dir of its own under DIR; closing its input makes it stop the server
# by pid and remove that dir, then exit.
#
#   postgres_start BIN DIR [ARGS...]   # sets postgres_url and postgres_pid
#   postgres_stop                      # stops it; waits for it by pid

postgres_start() {
  local bin=$1 dir=$2 line
  shift 2
  # The server runs as the postgres user, who must be able to reach DIR.
  chmod 711 "$dir"
  coproc POSTGRES { exec "$bin" "$dir" "$@" 2>&1; }
  postgres_pid=$POSTGRES_PID
  postgres_out=${POSTGRES[0]}
  postgres_in=${POSTGRES[1]}
  postgres_url=
  while read -t 60 -r line <&"$postgres_out"; do
    case "$line" in
      "url "*) postgres_url=${line#url } ;;
      ready) [[ -n "$postgres_url" ]] && return 0 ;;
      *) printf '%s\n' "$line" >&2 ;;
    esac
  done
  printf 'PostgreSQL did not start (%s, pid %s)\n' "$bin" "$postgres_pid" >&2
  return 1
}

postgres_stop() {
  [[ -n "${postgres_in:-}" ]] || return 0
  exec {postgres_in}>&-
  postgres_in=
  wait "$postgres_pid" || printf 'envparity-test-postgres (pid %s) exited with %s\n' "$postgres_pid" "$?" >&2
}
