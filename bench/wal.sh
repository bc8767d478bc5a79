#!/usr/bin/env bash
# Write amplification: the bytes a create and a PATCH add to the write-ahead log, per operation.
#
#   bench/wal.sh [ROSTER_BINARY]
#   WAL_BACKENDS=sqlite WAL_REQUESTS=1000 bench/wal.sh /tmp/roster-before
#
# For each backend (WAL_BACKENDS, default "sqlite postgres") and each operation (create,
# patch-active), a fresh database is seeded with 1000 users at full speed, then roster-bench
# sends WAL_REQUESTS (500) operations at concurrency 1 and at WAL_CONCURRENCY (8), and the
# script reports the log bytes they added, divided by the operations:
#
# - SQLite: every byte the server writes to the `-wal` file, counted by tracing its write system
#   calls (strace). A checkpoint's restart of the log does not hide any, as a file's size would.
# - PostgreSQL: `pg_current_wal_lsn()` before and after. The log is the whole cluster's, so
#   anything else writing to the same server at the time is counted too: run it on a quiet one.
#
# At concurrency 1 every operation commits on its own and writes out every page it changed; at
# higher concurrency SQLite's group commit writes a page changed by several writes of one batch
# once, so the bytes per operation fall.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
roster=${1:-$target/release/roster}
bench=$target/release/roster-bench
requests=${WAL_REQUESTS:-500}
concurrency=${WAL_CONCURRENCY:-8}
postgres=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
port=${BENCH_PORT:-18191}
command -v strace >/dev/null || { echo "strace is needed (apt-get install strace)" >&2; exit 1; }
if [[ -z ${1:-} ]]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p roster -p roster-bench
fi
tmp=$(mktemp -d)
server=
pg_db=
cleanup() {
    [[ -n $server ]] && { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
    [[ -n $pg_db ]] && psql "$postgres/postgres" -q -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT

start() {
    ROSTER_DATABASE_URL=$1 ROSTER_LISTEN=127.0.0.1:$port RUST_LOG=warn \
        ROSTER_RATE_LIMIT_PER_TENANT=0 ROSTER_RATE_LIMIT_PER_CLIENT=0 \
        "$roster" serve --sweep-interval-secs 0 >"$tmp/server.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
        sleep 0.1
    done
    token=$(ROSTER_DATABASE_URL=$1 RUST_LOG=warn "$roster" token issue --tenant default --name wal --scope scim 2>/dev/null)
}

stop() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
}

run() {
    "$bench" --base-url "http://127.0.0.1:$port/scim/v2" --token "$token" --users 1000 --seed 1 \
        --scenarios "$1" --requests "$2" --warmup 0 --concurrency "$3" >>"$tmp/bench.log" 2>&1
}

# The bytes the server writes to files whose name ends in -wal while `run` runs.
sqlite_bytes() {
    strace -f -qq -y -e trace=write,pwrite64,writev,pwritev,pwritev2 -o "$tmp/strace" -p "$server" &
    local tracer=$!
    sleep 1
    run "$@"
    sleep 1
    kill -INT "$tracer"
    wait "$tracer" 2>/dev/null || true
    # Each line: pwrite64(7</path/roster.db-wal>, "..."..., 4120, 8232) = 4120
    awk '/-wal>/ && / = [0-9]+$/ { bytes += $NF } END { print bytes + 0 }' "$tmp/strace"
}

lsn() {
    psql "$1" -qAt -c "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"
}

for backend in ${WAL_BACKENDS:-sqlite postgres}; do
    for scenario in create patch-active; do
        for c in 1 "$concurrency"; do
            if [[ $backend == sqlite ]]; then
                database=$tmp/roster-$scenario-$c.db
            else
                pg_db=roster_wal_$$_${scenario//-/_}_$c
                psql "$postgres/postgres" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $pg_db" >/dev/null
                database=$postgres/$pg_db
            fi
            start "$database"
            # Seeds the users and prepares the statements, outside the count.
            run get 1 1
            run "$scenario" 50 "$c"
            if [[ $backend == sqlite ]]; then
                bytes=$(sqlite_bytes "$scenario" "$requests" "$c")
            else
                before=$(lsn "$database")
                run "$scenario" "$requests" "$c"
                after=$(lsn "$database")
                bytes=$(python3 -c "print(int(float('$after') - float('$before')))")
            fi
            stop
            if [[ $backend == postgres ]]; then
                psql "$postgres/postgres" -q -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null
                pg_db=
            fi
            echo "$backend $scenario concurrency $c: $((bytes / requests)) WAL bytes per operation ($bytes for $requests)"
        done
    done
done
