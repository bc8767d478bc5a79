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
# ROSTER_DATABASE_URL when set) with 10^4 users. roster-bench (its random choices seeded, so
# that two builds get the same offsets and users) sends 300 operations to warm it, then REQUESTS
# operations, then twice as many, at concurrency 4 (INSTRUCTIONS_CONCURRENCY); the difference between the two
# counts, divided by REQUESTS, is the server's instructions per operation (bench/callgrind.sh).
# Leaves callgrind.SCENARIO.first.out and callgrind.SCENARIO.second.out in the temporary
# directory; compare them with `callgrind_annotate --inclusive=yes`.
set -euo pipefail

scenario=${1:?usage: bench/instructions.sh SCENARIO [REQUESTS] [ROSTER_BINARY]}
requests=${2:-1500}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
roster=${3:-$target/release/roster}
bench=$target/release/roster-bench
# shellcheck source=bench/callgrind.sh
source "$root/bench/callgrind.sh"
callgrind_require
if [[ -z ${3:-} ]]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p roster -p roster-bench
fi
cg_tmp=$(mktemp -d)
echo "profiles in $cg_tmp" >&2
trap callgrind_stop EXIT

callgrind_seed "$roster" "$bench" "${ROSTER_DATABASE_URL:-$cg_tmp/roster.db}" 10000
callgrind_start
callgrind_measure "$scenario" "$requests" 300 --concurrency "${INSTRUCTIONS_CONCURRENCY:-4}" --seed 1
callgrind_stop
echo "$scenario: $cg_per_op instructions per operation in the server ($requests and $((2 * requests)) operations: $cg_first and $cg_second)"
