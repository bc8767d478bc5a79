#!/usr/bin/env bash
# Durability under kill -9, on SQLite and PostgreSQL.
#
#   scripts/durability.sh BINARY [RUNS]
#
# BINARY is a built `roster` (target/release/roster or target/debug/roster); RUNS (default 5)
# runs per backend. Each run takes a fresh database (an SQLite file in a temporary folder, or a
# new PostgreSQL database that is dropped afterwards), drives concurrent creates, PATCHes, PUTs,
# deactivations, session openings and deletes against `roster serve`, sends it SIGKILL in the
# middle of the load, restarts it on the same database and checks every acknowledged write
# (scripts/durability.py says exactly what is checked). Prints one line per run and the totals;
# exits 1 when any run found a violation or failed.
#
# Environment: DURABILITY_BACKENDS ("sqlite postgres"), DURABILITY_SECONDS (10: the kill comes 40-80 % into it),
# DURABILITY_WORKERS (8), DURABILITY_POSTGRES (postgres://postgres@127.0.0.1:5432, trust auth;
# the database "test" there is used to create and drop the run's databases).
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 BINARY [RUNS]" >&2
  exit 2
fi
binary="$(realpath "$1")"
runs="${2:-5}"
backends="${DURABILITY_BACKENDS:-sqlite postgres}"
load_seconds="${DURABILITY_SECONDS:-10}"
workers="${DURABILITY_WORKERS:-8}"
pg="${DURABILITY_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
here="$(cd "$(dirname "$0")" && pwd)"
[ -x "$binary" ] || { echo "not an executable: $binary" >&2; exit 2; }

results="$(mktemp /tmp/roster-durability-results.XXXXXX)"
failed=0
for backend in $backends; do
  for run in $(seq 1 "$runs"); do
    work="$(mktemp -d /tmp/roster-durability.XXXXXX)"
    database=""
    case "$backend" in
      sqlite) url="$work/roster.db" ;;
      postgres)
        database="roster_durability_$$_${run}"
        psql -q -v ON_ERROR_STOP=1 "$pg/test" -c "CREATE DATABASE $database" >/dev/null
        url="$pg/$database"
        ;;
      *) echo "unknown backend $backend" >&2; exit 2 ;;
    esac
    status=0
    python3 "$here/durability.py" --binary "$binary" --database-url "$url" --workdir "$work" \
      --seconds "$load_seconds" --workers "$workers" --label "$backend#$run" >"$work/result.json" || status=$?
    if [ -n "$database" ]; then
      psql -q "$pg/test" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null || true
    fi
    cat "$work/result.json" >>"$results"
    python3 - "$work/result.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    print(f"{r['label']:<12} FAILED: {r['error']}")
else:
    print(f"{r['label']:<12} killed after {r['killed_after_s']:>4} s: {r['acknowledged']:>5} acknowledged writes,"
          f" {r['verified']:>5} verified, {r['superseded']:>4} superseded, {r['unknown']:>2} in flight at the kill"
          f" ({r['unknown_applied']} of them applied),"
          f" {r['violations']} violations ({r['users']} users, {r['events']} events, {r['server_error_count']} 5xx)")
    for v in r["details"]:
        print("    violation:", json.dumps(v)[:400])
EOF
    if [ "$status" -ne 0 ]; then
      failed=1
      echo "    kept for inspection: $work (server.log, result.json)"
    else
      rm -rf "$work"
    fi
  done
done

python3 - "$results" <<'EOF'
import json, sys
totals = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    t = totals.setdefault(r["label"].split("#")[0], dict(runs=0, failed=0, acknowledged=0, verified=0,
                                                          superseded=0, unknown=0, violations=0))
    t["runs"] += 1
    if "error" in r:
        t["failed"] += 1
        continue
    for k in ("acknowledged", "verified", "superseded", "unknown", "violations"):
        t[k] += r[k]
print()
for backend, t in totals.items():
    print(f"{backend}: {t['runs']} runs ({t['failed']} failed), {t['acknowledged']} acknowledged writes, "
          f"{t['verified']} verified, {t['superseded']} superseded by a later acknowledged write, "
          f"{t['unknown']} in flight at the kill, {t['violations']} violations")
EOF
rm -f "$results"
exit "$failed"
