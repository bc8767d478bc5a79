#!/usr/bin/env bash
# Measures two builds of Roster in one run, in turns, on each backend and at each concurrency, so
# that what else the machine does falls on both alike; writes bench/results/compare.md.
#
#   bench/compare.sh BEFORE_BINARY [AFTER_BINARY]
#   bench/compare.sh /tmp/roster-c9fb648                 # against this tree's release build
#   COMPARE_BACKENDS=sqlite COMPARE_CONCURRENCY=8 bench/compare.sh old/roster new/roster
#
# Settings (environment):
#   COMPARE_BACKENDS     "sqlite postgres" or either one          (default both)
#   COMPARE_CONCURRENCY  concurrencies, each a roster-bench run   (default "8 32")
#   COMPARE_SCENARIOS    roster-bench --scenarios list            (default below)
#   COMPARE_ROUNDS       rounds; each runs both builds, the order alternating (default 2)
#   COMPARE_DURATION     seconds per scenario after 1 s warm-up   (default 5)
#   COMPARE_USERS        users seeded on each fresh database       (default 10000)
#   COMPARE_LABELS       names of the two builds in the table    (default "before after")
#   BENCH_POSTGRES       PostgreSQL server URL, no database name  (default postgres://postgres@127.0.0.1:5432)
#
# Every (round, build, backend) starts from a fresh database, seeded by roster-bench through the
# build under test. The same roster-bench (this tree's) drives both builds. The table gives, per
# scenario, the median over rounds of req/s, p50 and p99 for each build, and after ÷ before.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench_dir/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
before=${1:?usage: bench/compare.sh BEFORE_BINARY [AFTER_BINARY]}
after=${2:-}
backends=${COMPARE_BACKENDS:-"sqlite postgres"}
concurrencies=${COMPARE_CONCURRENCY:-"8 32"}
scenarios=${COMPARE_SCENARIOS:-create,patch-active,get-put,group-add-10,list-index,get}
rounds=${COMPARE_ROUNDS:-2}
duration=${COMPARE_DURATION:-5}
users=${COMPARE_USERS:-10000}
postgres=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
read -r before_label after_label <<<"${COMPARE_LABELS:-before after}"
out=$bench_dir/results/compare.md

echo "building roster-bench (release) in $root" >&2
if [[ -z $after ]]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p roster -p roster-bench
    after=$target/release/roster
else
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p roster-bench
fi
bench=$target/release/roster-bench
for binary in "$before" "$after"; do
    [[ -x $binary ]] || {
        echo "$binary is not an executable" >&2
        exit 2
    }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/roster-compare.XXXXXX")
results=$tmp/results.jsonl
touch "$results"
server_pid=
pg_db=

cleanup() {
    stop_server
    drop_database
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/server.sh
source "$bench_dir/server.sh"

fresh_database() {
    local backend=$1
    case $backend in
    sqlite)
        rm -f "$tmp"/roster.db*
        database=$tmp/roster.db
        ;;
    postgres)
        pg_db=roster_compare_$$_$RANDOM
        psql "$postgres/postgres" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $pg_db" >/dev/null
        database=$postgres/$pg_db
        ;;
    *)
        echo "unknown backend $backend" >&2
        exit 2
        ;;
    esac
}

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_start=$(cut -d' ' -f1 /proc/loadavg)
for round in $(seq "$rounds"); do
    # Round 1 runs before then after, round 2 after then before, and so on.
    if ((round % 2)); then order="before after"; else order="after before"; fi
    for backend in $backends; do
        for build in $order; do
            if [[ $build == before ]]; then roster=$before; else roster=$after; fi
            for concurrency in $concurrencies; do
                echo "== round $round, $backend, $build, concurrency $concurrency ==" >&2
                fresh_database "$backend"
                start_server "$roster" "$database" "$tmp/server.log"
                if [[ $backend == postgres ]]; then
                    # Seed, then let VACUUM and CHECKPOINT do their work before measuring.
                    SCIM_TOKEN=$token "$bench" --base-url "http://127.0.0.1:$port/scim/v2" --users "$users" \
                        --duration 1 --warmup 0 --concurrency 8 --scenarios get >/dev/null 2>&1
                    psql "$database" -q -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null 2>&1 || true
                fi
                SCIM_TOKEN=$token "$bench" --base-url "http://127.0.0.1:$port/scim/v2" --users "$users" \
                    --duration "$duration" --concurrency "$concurrency" --scenarios "$scenarios" --seed 1 \
                    --label "$backend, $build, c$concurrency, round $round" --tag "backend=$backend" \
                    --tag "build=$build" --tag "round=$round" --tag "concurrency=$concurrency" \
                    --json "$results" >"$tmp/bench.out" 2>&1 ||
                    {
                        echo "roster-bench failed:" >&2
                        tail -20 "$tmp/bench.out" >&2
                    }
                stop_server
                drop_database
            done
        done
    done
done

mkdir -p "$(dirname "$out")"
{
    echo "# Two builds of Roster, in turns"
    echo
    echo "- Date: $started; load average $load_start at the start, $(cut -d' ' -f1 /proc/loadavg) at the end ($(nproc) cores; client and server share them)"
    echo "- Before: $before_label; after: $after_label (this tree: commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown))"
    echo "- Command: \`COMPARE_BACKENDS=\"$backends\" COMPARE_CONCURRENCY=\"$concurrencies\" COMPARE_ROUNDS=$rounds COMPARE_DURATION=$duration COMPARE_USERS=$users bench/compare.sh BEFORE AFTER\`"
    echo "- Scenarios: $scenarios; $duration s each after 1 s warm-up; $users users seeded on a fresh database per build and round; medians over $rounds rounds"
    echo
    python3 "$bench_dir/compare.py" "$results"
} >"$out"
cat "$out"
