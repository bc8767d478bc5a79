#!/usr/bin/env bash
# The CPU a write costs PostgreSQL itself, beside what it costs Roster: runs one roster-bench
# scenario for a fixed number of operations against a server on a fresh PostgreSQL database and
# reads the user and system time of every PostgreSQL process (backends, WAL writer,
# checkpointer…) and of the server from /proc before and after.
#
#   bench/pg_cpu.sh SCENARIO [REQUESTS] [ROSTER_BINARY]
#   bench/pg_cpu.sh create 3000
#   bench/pg_cpu.sh patch-active 3000 /tmp/roster-before
#
# Prints microseconds of CPU per operation for PostgreSQL and for Roster. The whole cluster is
# counted, so run it on a cluster nothing else uses; /proc counts in clock ticks (10 ms), so use
# a few thousand operations. Settings: BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432),
# PG_CPU_CONCURRENCY (8), PG_CPU_USERS (10000).
set -euo pipefail

scenario=${1:?usage: bench/pg_cpu.sh SCENARIO [REQUESTS] [ROSTER_BINARY]}
requests=${2:-3000}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
roster=${3:-$target/release/roster}
bench=$target/release/roster-bench
postgres=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
concurrency=${PG_CPU_CONCURRENCY:-8}
users=${PG_CPU_USERS:-10000}
if [[ -z ${3:-} ]]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p roster -p roster-bench
fi

tmp=$(mktemp -d)
server_pid=
pg_db=roster_pg_cpu_$$
# shellcheck source=bench/server.sh
source "$root/bench/server.sh"
cleanup() {
    stop_server
    drop_database
    rm -rf "$tmp"
}
trap cleanup EXIT
psql "$postgres/postgres" -qc "CREATE DATABASE $pg_db" >/dev/null
url=$postgres/$pg_db
start_server "$roster" "$url" "$tmp/server.log"
base=http://127.0.0.1:$port/scim/v2
SCIM_TOKEN=$token "$bench" --base-url "$base" --users "$users" --duration 1 --warmup 0 --scenarios get >/dev/null 2>&1
psql "$url" -q -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null

# Clock ticks (utime + stime) of every PostgreSQL process, and of the server.
ticks() {
    local pids=("$@") total=0 stat
    for pid in "${pids[@]}"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        # Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
        read -r -a fields <<<"${stat##*) }"
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}
postgres_pids() { pgrep -x postgres || pgrep -f '^postgres:' || true; }

# Warm the scenario first, then measure.
SCIM_TOKEN=$token "$bench" --base-url "$base" --users "$users" --requests 300 --warmup 0 \
    --concurrency "$concurrency" --scenarios "$scenario" --seed 1 >/dev/null 2>&1
mapfile -t before_pids < <(postgres_pids)
pg_before=$(ticks "${before_pids[@]}")
roster_before=$(ticks "$server_pid")
SCIM_TOKEN=$token "$bench" --base-url "$base" --users "$users" --requests "$requests" --warmup 0 \
    --concurrency "$concurrency" --scenarios "$scenario" --seed 2 >"$tmp/bench.out" 2>&1
mapfile -t after_pids < <(postgres_pids)
# Processes that began during the run count from zero.
pg_after=$(ticks "${after_pids[@]}")
roster_after=$(ticks "$server_pid")
hz=$(getconf CLK_TCK)
awk -v s="$scenario" -v n="$requests" -v pg=$((pg_after - pg_before)) -v r=$((roster_after - roster_before)) -v hz="$hz" \
    'BEGIN { printf "%s: %.0f µs of PostgreSQL CPU and %.0f µs of Roster CPU per operation (%d operations)\n", s, pg * 1e6 / hz / n, r * 1e6 / hz / n, n }'
