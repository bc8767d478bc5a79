#!/usr/bin/env bash
# Benchmarks Roster with roster-bench on SQLite and on PostgreSQL, at each size of BENCH_SIZES
# (the same server grows from one size to the next), and writes bench/results/latest.md, ending
# with the performance targets checked by bench/targets.py.
#
#   bench/run.sh                                   # 10^4 then 10^5 users, 10 s per scenario
#   BENCH_SIZES="1000" BENCH_DURATION=3 bench/run.sh
#
# Settings (environment):
#   BENCH_SIZES        users to seed, grown in order          (default "10000 100000")
#   BENCH_DURATION     seconds per scenario                    (default 10)
#   BENCH_CONCURRENCY  concurrent requests                     (default 8)
#   BENCH_BACKENDS     "sqlite postgres" or either one         (default both)
#   BENCH_POSTGRES     PostgreSQL server URL, no database name (default postgres://postgres@127.0.0.1:5432)
#   BENCH_SCENARIOS    roster-bench --scenarios list           (default below; add
#                      group-add-10,group-add-100k,entra-sync, panel-people,panel-person
#                      for those; the panel ones sign in with `roster admin link`)
#   BENCH_SYNC_USERS   users entra-sync provisions             (default 10000)
#   BENCH_PROBE_SECONDS  seconds of `roster probe-commits`     (default 5)
#   BENCH_EXTRA_ARGS   more roster-bench flags, e.g. "--client hyper"
#   BENCH_WEBHOOK      1: a webhook to roster-bench's receiver, measured with entra-sync
#
# Everything runs on this machine: the servers listen on 127.0.0.1 only. Temporary files and the
# PostgreSQL database are removed at the end, also on failure or Ctrl-C.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench_dir/.." && pwd)
sizes=${BENCH_SIZES:-"10000 100000"}
duration=${BENCH_DURATION:-10}
concurrency=${BENCH_CONCURRENCY:-8}
backends=${BENCH_BACKENDS:-"sqlite postgres"}
postgres=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
scenarios=${BENCH_SCENARIOS:-select-1,create,get,filter-username,filter-externalid,patch-active,list-index,list-cursor,get-put,ceiling}
sync_users=${BENCH_SYNC_USERS:-10000}
probe_seconds=${BENCH_PROBE_SECONDS:-5}
extra_args=${BENCH_EXTRA_ARGS:-}
webhook=${BENCH_WEBHOOK:-0}
out=$bench_dir/results/latest.md
target=${CARGO_TARGET_DIR:-$root/target}

echo "building roster and roster-bench (release) in $root" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p roster -p roster-bench
roster=$target/release/roster
bench=$target/release/roster-bench

tmp=$(mktemp -d "${TMPDIR:-/tmp}/roster-bench.XXXXXX")
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

# The single-row commit rate of database $1 (same disk and durability settings), the yardstick for
# create; prints commits/s, or nothing when the probe fails.
probe_commits() {
    local database=$1
    if ! ROSTER_DATABASE_URL=$database RUST_LOG=warn "$roster" probe-commits --seconds "$probe_seconds" \
        >"$tmp/probe.out" 2>"$tmp/probe.err"; then
        echo "roster probe-commits failed:" >&2
        tail -5 "$tmp/probe.err" >&2
        return 0
    fi
    # stdout is the rate alone ("1234"); failing that, work it out from the stderr line
    # "N single-row commits in S s".
    local rate
    rate=$(awk 'NF == 1 && $1 ~ /^[0-9]+([.][0-9]+)?$/ { rate = $1 } END { print rate }' "$tmp/probe.out")
    if [[ -z $rate ]]; then
        rate=$(grep -oE '^[0-9]+ single-row commits in [0-9.]+ s' "$tmp/probe.err" |
            awk '$5 > 0 { printf "%.0f\n", $1 / $5 }' | tail -1) || true
    fi
    if [[ -z $rate ]]; then
        echo "could not read the commit rate from roster probe-commits:" >&2
        cat "$tmp/probe.out" "$tmp/probe.err" >&2
    fi
    echo "$rate"
}

# How big the database is after a size's runs, and, on PostgreSQL, how much of it the buffer
# cache holds: reads that miss it cost a system call each, which shows as req/s falling with size.
database_size() {
    local backend=$1 database=$2
    case $backend in
    sqlite)
        local bytes
        bytes=$(cat "$database" "$database-wal" 2>/dev/null | wc -c)
        printf 'Database after these runs: %s MiB (SQLite file and WAL).\n\n' "$((bytes / 1048576))" >>"$out"
        ;;
    postgres)
        local facts
        facts=$(psql "$database" -qAt -F '|' -c "SELECT pg_size_pretty(pg_database_size(current_database())), \
            pg_size_pretty(pg_total_relation_size('users')), pg_size_pretty(pg_relation_size('users')), \
            current_setting('shared_buffers')" 2>/dev/null) || return 0
        IFS='|' read -r db total heap buffers <<<"$facts"
        printf 'Database after these runs: %s; `users` %s with its indexes (table %s); `shared_buffers` %s.\n\n' \
            "$db" "$total" "$heap" "$buffers" >>"$out"
        ;;
    esac
}

# PostgreSQL after a bulk load: autovacuum and the checkpointer spend the next minutes on the new
# rows (visibility map, statistics, dirty buffers), and would do it during the measurements. So
# the users are seeded first (a one-second `get` run, reported nowhere), then VACUUM (ANALYZE)
# and CHECKPOINT do that work up front, and the runs measure the database as it settles.
settle_postgres() {
    local database=$1 size=$2 started
    started=$(date +%s)
    # shellcheck disable=SC2086 # BENCH_EXTRA_ARGS is a list of flags
    if ! SCIM_TOKEN=$token timeout 7200 "$bench" --base-url "http://127.0.0.1:$port/scim/v2" --users "$size" \
        --duration 1 --warmup 0 --concurrency "$concurrency" --scenarios get $extra_args >"$tmp/seed.out" 2>&1; then
        echo "seeding $size users failed:" >&2
        tail -5 "$tmp/seed.out" >&2
        return 0
    fi
    local seeded
    seeded=$(($(date +%s) - started))
    started=$(date +%s)
    psql "$database" -q -v ON_ERROR_STOP=1 -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null 2>&1 ||
        echo "VACUUM (ANALYZE) or CHECKPOINT failed" >&2
    printf 'Before the %s-user runs: seeding took %s s, then `VACUUM (ANALYZE)` and `CHECKPOINT` %s s.\n\n' \
        "$size" "$seeded" "$(($(date +%s) - started))" >>"$out"
}

# What the server logged at WARN or above, and whether it is still running.
server_health() {
    local log=$1 backend=$2
    local warnings errors
    warnings=$(grep -c '"level":"WARN"' "$log" || true)
    errors=$(grep -c '"level":"ERROR"' "$log" || true)
    {
        echo "Server log ($backend): $warnings WARN and $errors ERROR lines."
        if ((errors > 0)); then
            echo
            echo '```text'
            grep '"level":"ERROR"' "$log" | head -5 | cut -c1-400
            echo '```'
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo
            echo "**The server process is gone.** Last log lines:"
            echo
            echo '```text'
            tail -10 "$log" | cut -c1-400
            echo '```'
        fi
        echo
    } >>"$out"
}

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$root" status --porcelain --untracked-files=no -- src migrations 2>/dev/null) ]]; then
    commit="$commit (with uncommitted changes)"
fi
mkdir -p "$(dirname "$out")"
{
    echo "# Roster load benchmark"
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Roster: commit $commit, release build, \`--log-format json\`, \`RUST_LOG=warn\`, default settings (pool 16, workers = cores)"
    echo "- Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/^Mem:/ {print $2}') GiB; client and server share it"
    echo "- Command: \`BENCH_SIZES=\"$sizes\" BENCH_DURATION=$duration BENCH_CONCURRENCY=$concurrency BENCH_BACKENDS=\"$backends\" bench/run.sh\`"
    echo "- Scenarios: $scenarios; $duration s each after 1 s warm-up, concurrency $concurrency; entra-sync provisions $sync_users users; see bench/README.md for how to read the tables"
    echo
} >"$out"

for backend in $backends; do
    case $backend in
    sqlite)
        database=$tmp/roster.db
        ;;
    postgres)
        pg_db=roster_bench_$$_$RANDOM
        if ! psql "$postgres/postgres" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $pg_db" >/dev/null; then
            echo "PostgreSQL at $postgres cannot be reached: skipped." >>"$out"
            pg_db=
            continue
        fi
        database=$postgres/$pg_db
        ;;
    *)
        echo "unknown backend $backend" >&2
        exit 2
        ;;
    esac
    echo "== $backend ==" >&2
    echo "## $backend" >>"$out"
    echo >>"$out"
    log=$tmp/$backend.log
    start_server "$roster" "$database" "$log"
    webhook_args=
    if [[ $webhook == 1 ]]; then
        webhook_port=$(free_port)
        ROSTER_DATABASE_URL=$database "$roster" webhook add --tenant default --allow-private \
            --url "http://127.0.0.1:$webhook_port/" >/dev/null
        webhook_args="--webhook-listen 127.0.0.1:$webhook_port"
    fi
    echo "-- $backend: single-row commit rate --" >&2
    commits=$(probe_commits "$database")
    printf '{"kind":"probe","backend":"%s","commits_per_sec":%s,"seconds":%s}\n' \
        "$backend" "${commits:-null}" "$probe_seconds" >>"$results"
    if [[ -n $commits ]]; then
        commits="$commits commits/s"
    else
        commits="unknown, the probe failed"
    fi
    printf 'Single-row commit rate (`roster probe-commits --seconds %s` on the same database, before the runs): %s.\n\n' \
        "$probe_seconds" "$commits" >>"$out"
    for size in $sizes; do
        echo "-- $backend, $size users --" >&2
        if [[ $backend == postgres ]]; then
            settle_postgres "$database" "$size"
        fi
        # The Admin Panel scenarios sign in with a one-time link, one per run.
        panel_args=()
        if [[ $scenarios == *panel-* ]]; then
            panel_args=(--admin-link "$(ROSTER_DATABASE_URL=$database "$roster" admin link --tenant default \
                --name bench --expires 24h --public-url "http://127.0.0.1:$port")")
        fi
        # shellcheck disable=SC2086 # BENCH_EXTRA_ARGS is a list of flags
        if ! SCIM_TOKEN=$token timeout 7200 "$bench" --base-url "http://127.0.0.1:$port/scim/v2" "${panel_args[@]}" \
            --select1-url "http://127.0.0.1:$port/readyz" --users "$size" --duration "$duration" \
            --concurrency "$concurrency" --scenarios "$scenarios" --sync-users "$sync_users" \
            --server-pid "$server_pid" --label "$backend, $size users" --tag "backend=$backend" --tag "size=$size" \
            --markdown "$out" --json "$results" $webhook_args $extra_args; then
            printf '**roster-bench failed for %s at %s users** (see its output above).\n\n' "$backend" "$size" >>"$out"
        fi
        database_size "$backend" "$database"
        if ! kill -0 "$server_pid" 2>/dev/null; then
            break
        fi
    done
    server_health "$log" "$backend"
    stop_server
    drop_database
    rm -f "$tmp"/roster.db*
done

# The targets need every backend's and size's figures, so they come last.
echo "== targets ==" >&2
if ! python3 "$bench_dir/targets.py" "$results" | tee -a "$out"; then
    printf '## Targets\n\n**bench/targets.py failed** (see its output above).\n' >>"$out"
fi

echo "$out"
