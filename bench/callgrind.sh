# Counting the CPU instructions Roster spends per roster-bench operation under valgrind's
# callgrind, shared by bench/instructions.sh and bench/cost-gate.sh. Source it (after
# `set -euo pipefail`); it only defines functions and the cg_* variables they share.
#
#   callgrind_seed ROSTER BENCH DATABASE USERS  seed DATABASE with USERS at full speed, outside
#                                               valgrind, and issue a token
#   callgrind_start                             serve DATABASE under callgrind
#   callgrind_measure SCENARIO REQUESTS WARM [ROSTER-BENCH FLAGS…]
#                                               set cg_per_op to the server's instructions per
#                                               operation (cg_first, cg_second: the two counts)
#   callgrind_stop                              stop the server (also safe when none runs)
#
# callgrind_measure runs the scenario WARM operations (statements prepared, caches filled), then
# REQUESTS operations, then twice as many, and dumps the server's counts after each: the
# difference between the two counts divided by REQUESTS is the server's instructions per
# operation, without what every roster-bench run costs once (finding the seeded users, a group
# scenario's set-up). User-space instructions only: system calls and the time spent waiting for a
# sync are not in it. The two profiles stay in cg_tmp as callgrind.SCENARIO.first.out and
# callgrind.SCENARIO.second.out; compare them with `callgrind_annotate --inclusive=yes`.

cg_port=${BENCH_PORT:-18190}
cg_tmp=
cg_server=
cg_dumps=0

callgrind_require() {
    if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
        echo "valgrind is needed (apt-get install valgrind)" >&2
        return 1
    fi
}

callgrind_wait_ready() {
    local tries=$1 pause=$2
    for _ in $(seq "$tries"); do
        curl -sf "http://127.0.0.1:$cg_port/readyz" >/dev/null && return 0
        kill -0 "$cg_server" 2>/dev/null || break
        sleep "$pause"
    done
    echo "the server did not become ready; its log is in $cg_tmp" >&2
    return 1
}

callgrind_seed() {
    cg_roster=$1 cg_bench=$2 cg_database=$3 cg_users=$4
    # The seed runs at full speed: the per-tenant and per-client rate limits would hold it back
    # (a build older than the limits ignores these variables).
    export ROSTER_RATE_LIMIT_PER_TENANT=0 ROSTER_RATE_LIMIT_PER_CLIENT=0
    ROSTER_DATABASE_URL=$cg_database ROSTER_LISTEN=127.0.0.1:$cg_port RUST_LOG=warn \
        "$cg_roster" serve >"$cg_tmp/seed.log" 2>&1 &
    cg_server=$!
    callgrind_wait_ready 100 0.1
    cg_token=$(ROSTER_DATABASE_URL=$cg_database RUST_LOG=warn \
        "$cg_roster" token issue --tenant default --name instructions --scope scim)
    # `get` is a scenario that works on seeded users, so roster-bench seeds them before its one
    # request (a scenario that needs none, such as select-1, would seed nothing).
    "$cg_bench" --base-url "http://127.0.0.1:$cg_port/scim/v2" --token "$cg_token" --users "$cg_users" \
        --scenarios get --requests 1 --warmup 0 >"$cg_tmp/seed-bench.log" 2>&1
    callgrind_stop
}

callgrind_start() {
    ROSTER_DATABASE_URL=$cg_database ROSTER_LISTEN=127.0.0.1:$cg_port RUST_LOG=warn \
        valgrind --tool=callgrind --callgrind-out-file="$cg_tmp/callgrind.out" \
        "$cg_roster" serve --sweep-interval-secs 0 >"$cg_tmp/server.log" 2>&1 &
    cg_server=$!
    cg_dumps=0
    callgrind_wait_ready 600 0.3
}

callgrind_stop() {
    if [[ -n $cg_server ]]; then
        kill "$cg_server" 2>/dev/null || true
        wait "$cg_server" 2>/dev/null || true
        cg_server=
    fi
}

# One roster-bench run of REQUESTS operations; fails unless every operation succeeded.
callgrind_run() {
    local scenario=$1 requests=$2
    shift 2
    local json=$cg_tmp/$scenario.jsonl
    rm -f "$json"
    "$cg_bench" --base-url "http://127.0.0.1:$cg_port/scim/v2" --token "$cg_token" \
        --select1-url "http://127.0.0.1:$cg_port/readyz" --users "$cg_users" --timeout 60 \
        --scenarios "$scenario" --requests "$requests" --warmup 0 --json "$json" "$@" >>"$cg_tmp/bench.log" 2>&1
    python3 - "$json" "$scenario" "$requests" <<'EOF' || { echo "see $cg_tmp/bench.log" >&2; return 1; }
import json, sys
path, scenario, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [row for line in open(path) for row in json.loads(line)["rows"]]
bad = [row for row in rows if row["errors"] != 0 or row["ops"] != requests]
if not rows or bad:
    for row in bad or [{"name": scenario}]:
        print(f"{scenario}: not a clean run of {requests} operations: {row}", file=sys.stderr)
    sys.exit(1)
EOF
}

# Dumps the counts since the last dump (callgrind then starts again from zero) to
# callgrind.out.N, N counting the dumps, and moves that file to $1.
callgrind_dump() {
    callgrind_control -d "$cg_server" >/dev/null 2>&1
    cg_dumps=$((cg_dumps + 1))
    mv "$cg_tmp/callgrind.out.$cg_dumps" "$1"
}

callgrind_measure() {
    local scenario=$1 requests=$2 warm=$3
    shift 3
    local first=$cg_tmp/callgrind.$scenario.first.out second=$cg_tmp/callgrind.$scenario.second.out
    # Work a request leaves behind is counted with it: the request log's background task writes
    # a second's requests once a second, so each run is followed by a pause that lets it write
    # them inside the run's window (CG_SETTLE seconds) rather than in the next operation's.
    local settle=${CG_SETTLE:-3}
    callgrind_run "$scenario" "$warm" "$@"
    sleep "$settle"
    callgrind_control -z "$cg_server" >/dev/null 2>&1
    callgrind_run "$scenario" "$requests" "$@"
    sleep "$settle"
    callgrind_dump "$first"
    callgrind_run "$scenario" $((2 * requests)) "$@"
    sleep "$settle"
    callgrind_dump "$second"
    cg_first=$(awk '/^(summary|totals):/ { print $2; exit }' "$first")
    cg_second=$(awk '/^(summary|totals):/ { print $2; exit }' "$second")
    cg_per_op=$(((cg_second - cg_first) / requests))
}
