#!/usr/bin/env bash
# Counts the CPU instructions Roster spends per request of one roster-bench scenario, under
# valgrind's callgrind: a figure that does not move with what else the machine is doing, so two
# builds can be compared on a busy machine where req/s would drown the difference in noise.
#
#   bench/instructions.sh SCENARIO [REQUESTS] [ROSTER_BINARY]
#   bench/instructions.sh get 1500
#   bench/instructions.sh create 1500 /tmp/roster-before
#
# The server runs on a fresh SQLite database in a temporary directory (or on
# ROSTER_DATABASE_URL when set) with 10^4 users. roster-bench sends REQUESTS operations, then
# twice as many; the difference between the two counts, divided by REQUESTS, is the server's
# instructions per operation, without the start-up and the seeding check both runs include.
# User-space instructions only: system calls and the time spent waiting for a sync are not in it.
# Leaves callgrind.first.out and callgrind.second.out in the temporary directory; compare them
# with `callgrind_annotate --inclusive=yes`.
set -euo pipefail

scenario=${1:?usage: bench/instructions.sh SCENARIO [REQUESTS] [ROSTER_BINARY]}
requests=${2:-1500}
root=$(cd "$(dirname "$0")/.." && pwd)
roster=${3:-$root/target/release/roster}
bench=$root/target/release/roster-bench
port=${BENCH_PORT:-18190}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
if [[ -z ${3:-} ]]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p roster -p roster-bench
fi
tmp=$(mktemp -d)
database=${ROSTER_DATABASE_URL:-$tmp/roster.db}
# The seed runs at full speed: the per-tenant and per-client rate limits would hold it back
# (a build older than the limits ignores these variables).
export ROSTER_RATE_LIMIT_PER_TENANT=0 ROSTER_RATE_LIMIT_PER_CLIENT=0
echo "profiles in $tmp" >&2

# The seed runs at full speed first, outside valgrind.
ROSTER_DATABASE_URL=$database ROSTER_LISTEN=127.0.0.1:$port RUST_LOG=warn "$roster" serve >"$tmp/seed.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
token=$(ROSTER_DATABASE_URL=$database RUST_LOG=warn "$roster" token issue --tenant default --name instructions --scope scim)
"$bench" --base-url "http://127.0.0.1:$port/scim/v2" --token "$token" --users 10000 --scenarios select-1 \
    --requests 1 --warmup 0 >/dev/null
kill $server
wait $server 2>/dev/null || true

ROSTER_DATABASE_URL=$database ROSTER_LISTEN=127.0.0.1:$port RUST_LOG=warn \
    valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.out" \
    "$roster" serve --sweep-interval-secs 0 >"$tmp/server.log" 2>&1 &
server=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.3; done
run() {
    "$bench" --base-url "http://127.0.0.1:$port/scim/v2" --token "$token" \
        --select1-url "http://127.0.0.1:$port/readyz" --users 10000 --concurrency 4 --timeout 60 \
        --scenarios "$scenario" --requests "$1" --warmup 0 >>"$tmp/bench.log" 2>&1
}
run 300 # warm: statements prepared, caches filled
callgrind_control -z $server >/dev/null 2>&1
run "$requests"
callgrind_control -d $server >/dev/null 2>&1
run $((2 * requests))
callgrind_control -d $server >/dev/null 2>&1
kill $server
wait $server 2>/dev/null || true
mv "$tmp/callgrind.out.1" "$tmp/callgrind.first.out"
mv "$tmp/callgrind.out.2" "$tmp/callgrind.second.out"
total() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }
first=$(total "$tmp/callgrind.first.out")
second=$(total "$tmp/callgrind.second.out")
echo "$scenario: $(((second - first) / requests)) instructions per operation in the server ($requests and $((2 * requests)) operations: $first and $second)"
