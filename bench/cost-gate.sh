#!/usr/bin/env bash
# The cost gate: counts the instructions Roster's server spends per operation under valgrind's
# callgrind (bench/callgrind.sh) and fails when one costs more than its budget in
# bench/budgets.toml plus the tolerance given there (10 %). Instruction counts do not move with
# what else the machine is doing, so the gate works on a busy CI machine where req/s would not.
#
#   bench/cost-gate.sh                 build, measure every operation of the budget file, compare
#   COST_GATE_BUDGETS=FILE bench/cost-gate.sh
#
# Conditions, all from the budget file's [conditions] so that every run measures alike: the build
# profile, a fresh SQLite database seeded with `users` users, one server under callgrind for all
# operations (in the file's order), per operation `warm` operations to warm it, then `requests`
# and twice as many at `concurrency` with roster-bench's random choices seeded by `seed`. The
# server's environment holds no ROSTER_* variables but the ones set here. Prints a table
# (operation, budget, measured, change) and exits 1 when an operation is over budget; the
# profiles of a failed run are kept for `callgrind_annotate`.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench_dir/.." && pwd)
budgets=${COST_GATE_BUDGETS:-$bench_dir/budgets.toml}
target=${CARGO_TARGET_DIR:-$root/target}
# shellcheck source=bench/callgrind.sh
source "$bench_dir/callgrind.sh"
callgrind_require

settings=$(python3 "$bench_dir/cost_gate.py" settings "$budgets")
profile= users= requests= warm= concurrency= seed= operations=
eval "$settings"
started=$SECONDS

echo "cost gate: building roster and roster-bench (profile $profile)" >&2
cargo build --profile "$profile" --locked --quiet --manifest-path "$root/Cargo.toml" -p roster -p roster-bench
out_dir=$target/$profile
[[ $profile == dev ]] && out_dir=$target/debug

while read -r variable; do unset "$variable"; done < <(compgen -e | grep '^ROSTER_' || true)
cg_tmp=$(mktemp -d "${TMPDIR:-/tmp}/roster-cost-gate.XXXXXX")
passed=
finish() {
    callgrind_stop
    if [[ $passed == yes ]]; then rm -rf "$cg_tmp"; else echo "cost gate: logs and profiles kept in $cg_tmp" >&2; fi
}
trap finish EXIT

built=$SECONDS
echo "cost gate: seeding $users users" >&2
callgrind_seed "$out_dir/roster" "$out_dir/roster-bench" "$cg_tmp/roster.db" "$users"
callgrind_start
for operation in $operations; do
    began=$SECONDS
    callgrind_measure "$operation" "$requests" "$warm" --concurrency "$concurrency" --seed "$seed"
    echo "$operation $cg_per_op" >>"$cg_tmp/measured"
    echo "cost gate: $operation: $cg_per_op instructions per operation ($((SECONDS - began)) s)" >&2
done
callgrind_stop

status=0
python3 "$bench_dir/cost_gate.py" compare "$budgets" "$cg_tmp/measured" || status=$?
echo "cost gate: $((SECONDS - started)) s in all, $((SECONDS - built)) s measuring" >&2
[[ $status == 0 ]] && passed=yes
exit "$status"
