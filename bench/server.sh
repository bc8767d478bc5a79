# Shared by bench/run.sh and bench/compare.sh: starting and stopping a server, and the
# PostgreSQL database a run made. Expects `postgres` (server URL, no database name) and uses the
# globals `server_pid`, `pg_db`, `port` and `token`.

stop_server() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        # Graceful shutdown waits for in-flight requests; don't wait forever.
        for _ in $(seq 100); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}

drop_database() {
    if [[ -n $pg_db ]]; then
        psql "$postgres/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null ||
            echo "could not drop database $pg_db" >&2
        pg_db=
    fi
}

free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

# Starts `roster serve` of binary $1 on database $2, logging to $3; sets server_pid, port and
# token.
start_server() {
    local roster=$1 database=$2 log=$3
    port=$(free_port)
    # The scenarios measure how much one tenant can get through: its rate limits (300/s by
    # default) would measure only themselves.
    ROSTER_DATABASE_URL=$database ROSTER_LISTEN=127.0.0.1:$port RUST_LOG=warn \
        ROSTER_RATE_LIMIT_PER_TENANT=0 ROSTER_RATE_LIMIT_PER_CLIENT=0 \
        "$roster" serve --log-format json >"$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 300); do
        if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
            token=$(ROSTER_DATABASE_URL=$database "$roster" token issue --tenant default --name bench --scope scim 2>/dev/null)
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            server_pid=
            echo "roster serve exited during start-up:" >&2
            tail -20 "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "roster serve was not ready after 30 s" >&2
    return 1
}

