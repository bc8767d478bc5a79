#!/usr/bin/env bash
# Usage: ci.sh [ROSTER_BINARY]   (default: ../target/debug/roster, relative to this script)
#
# Runs run.sh against two fresh Roster servers, one on SQLite (a temporary directory) and one on
# PostgreSQL (a new database, dropped afterwards), each on a free port with an access token from
# its token endpoint, for an OAuth client the CLI creates. Beside each runs a second node limited
# to IPSIE's floor of 25 requests/s per tenant, for the IPSIE suite's 429 test. Keeps each run's report as results/sqlite.md and results/postgres.md,
# stops the servers, and exits non-zero if either run failed. PostgreSQL must be reachable: PGHOST
# (127.0.0.1), PGPORT (5432) and PGUSER (postgres), trust authentication, as in .ci/run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
roster="$(realpath -m "${1:-$here/../target/debug/roster}")"
pg_host="${PGHOST:-127.0.0.1}" pg_port="${PGPORT:-5432}" pg_user="${PGUSER:-postgres}"

if [ ! -x "$roster" ]; then
  echo "ci.sh: no Roster binary at $roster (build it with cargo build, or pass its path)" >&2
  exit 2
fi
if ! pg_isready -q -h "$pg_host" -p "$pg_port"; then
  echo "ci.sh: PostgreSQL at $pg_host:$pg_port cannot be reached; the PostgreSQL run is required" >&2
  exit 1
fi

"$here/setup.sh"
mkdir -p "$here/results"

work="$(mktemp -d)"
database="roster_conformance_$(date +%s)_$$"
server_pids=()
psql_admin() { psql -q -v ON_ERROR_STOP=1 -h "$pg_host" -p "$pg_port" -U "$pg_user" -d postgres "$@"; }
stop_server() {
  local pid
  for pid in "${server_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  server_pids=()
}
cleanup() {
  stop_server
  psql_admin -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  "$here/.venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# IPSIE AL SCIM profile §4.3: at least 25 requests/s per tenant, 429 with Retry-After beyond.
rate_limit=25 rate_burst=25

# serve LABEL DATABASE_URL PORT [FLAG...]: start a node, wait until ready, then issue a token into
# $token. Returns non-zero (after printing the node's log) when it does not come up.
serve() {
  local label="$1" url="$2" port="$3" log="$work/roster-$1.log" ready="" pid
  shift 3
  ROSTER_DATABASE_URL="$url" ROSTER_LOG_FORMAT=json "$roster" serve --listen "127.0.0.1:$port" "$@" >"$log" 2>&1 &
  pid=$!
  server_pids+=("$pid")
  for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; then ready=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if [ -z "$ready" ]; then
    echo "ci.sh: Roster on $label did not become ready; its log:" >&2
    cat "$log" >&2
    return 1
  fi
  # IPSIE §4.1: SCIM requests carry an OAuth 2.0 access token. The suite's token comes from the
  # token endpoint (client credentials) of a client the CLI creates; §8: it expires, after the
  # 1 h default lifetime, longer than the run.
  local created client_id client_secret
  created="$(ROSTER_DATABASE_URL="$url" "$roster" client create --tenant default --name "conformance-$label" --scope scim --secret-expires 1d 2>/dev/null)" || {
    echo "ci.sh: roster client create failed on $label" >&2
    return 1
  }
  client_id="$(sed -n 's/^client_id: //p' <<<"$created")"
  client_secret="$(sed -n 's/^client_secret: //p' <<<"$created")"
  token="$(curl -fsS -u "$client_id:$client_secret" -d grant_type=client_credentials -d scope=scim \
    "http://127.0.0.1:$port/oauth/token" | "$here/.venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')" || {
    echo "ci.sh: the token endpoint refused the conformance client on $label" >&2
    return 1
  }
}

# run_against LABEL DATABASE_URL RATE_LIMITED_DATABASE_URL: serve both nodes, run the suites.
run_against() {
  local label="$1" url="$2" limited_url="$3" port limited_port limited_token status=0
  port="$(free_port)"
  limited_port="$(free_port)"
  echo "ci.sh: Roster on $label, port $port (rate-limited node: port $limited_port)"
  if ! serve "$label-rate-limited" "$limited_url" "$limited_port" \
    --rate-limit-per-tenant "$rate_limit" --rate-burst-per-tenant "$rate_burst"; then
    stop_server
    return 1
  fi
  limited_token="$token"
  if ! serve "$label" "$url" "$port"; then
    stop_server
    return 1
  fi
  rm -f "$here/results/latest.md"
  SCIM_RATE_LIMITED_BASE_URL="http://127.0.0.1:$limited_port/scim/v2" SCIM_RATE_LIMITED_TOKEN="$limited_token" \
    SCIM_RATE_LIMIT="$((rate_limit + rate_burst))" \
    "$here/run.sh" "http://127.0.0.1:$port/scim/v2" "$token" || status=$?
  if [ -f "$here/results/latest.md" ]; then
    cp "$here/results/latest.md" "$here/results/$label.md"
  else
    printf '# Conformance report: FAILED\n\nrun.sh stopped before writing a report (exit status %s); see the CI log.\n' "$status" >"$here/results/$label.md"
  fi
  stop_server
  return "$status"
}

failed=()
# The rate-limited SQLite node has its own file: one SQLite database is served by one process.
run_against sqlite "$work/roster.db" "$work/roster-rate-limited.db" || failed+=(sqlite)

psql_admin -c "CREATE DATABASE $database"
pg_url="postgres://$pg_user@$pg_host:$pg_port/$database"
run_against postgres "$pg_url" "$pg_url" || failed+=(postgres)

if [ ${#failed[@]} -gt 0 ]; then
  echo "ci.sh: conformance failed on: ${failed[*]} (reports: conformance-tests/results/sqlite.md, postgres.md)" >&2
  exit 1
fi
echo "ci.sh: conformance passed on SQLite and PostgreSQL"
