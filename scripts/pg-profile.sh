#!/usr/bin/env bash
# Where PostgreSQL's time goes while our server runs on it. Starts a scratch PostgreSQL on
# 127.0.0.1 (fsync on, pg_stat_statements loaded), the release server on it, then drives
# creates and validations with wrk; for each workload prints the rate, the statements that took
# the most database time, and what the busy backends were waiting on (sampled every 50 ms).
# Everything runs in a temporary directory, removed at the end.
#
#   scripts/pg-profile.sh                     # after `make release`
#   DURATION=20s CONNECTIONS=64 scripts/pg-profile.sh
#   SERVER_ARGS="--pg-max-connections 4" scripts/pg-profile.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_BIN=${SERVER_BIN:-target/release/server}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
[ -x "$SERVER_BIN" ] || { echo "no $SERVER_BIN: run 'make release' first" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PG_BIN" ] || { echo "PostgreSQL is needed (apt-get install postgresql)" >&2; exit 1; }
[ -f "$PG_BIN/../lib/pg_stat_statements.so" ] || { echo "pg_stat_statements is missing" >&2; exit 1; }

WORK=$(mktemp -d /tmp/pg-profile.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PG_PORT=$(free_port)
ADDR=127.0.0.1:$(free_port)
KEY=profile-key-$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d sessions -XAtq "$@"; }

SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  as_postgres "$PG_BIN/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] && chown postgres "$WORK"
as_postgres "$PG_BIN/initdb" -D "$WORK/data" -U postgres -A trust -E UTF8 >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$WORK/data" -l "$WORK/data/server.log" -w start -o \
  "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories='' \
   -c shared_preload_libraries=pg_stat_statements -c track_io_timing=on \
   -c pg_stat_statements.track=all" >/dev/null
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres sessions
psql_ -c "CREATE EXTENSION pg_stat_statements"

SESSIONS_STORE_URL="postgres://postgres@127.0.0.1:$PG_PORT/sessions" \
SESSIONS_BOOTSTRAP_API_KEY=$KEY RUST_LOG=warn \
  "$SERVER_BIN" serve --addr "$ADDR" ${SERVER_ARGS:-} >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do curl -sf "http://$ADDR/healthz" >/dev/null && break; sleep 0.1; done
curl -sf -X PUT -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{}' "http://$ADDR/api/v1/realms/profile" >/dev/null

# wrk scripts: creates write each answer's token to a file per thread; validations read them.
cat >"$WORK/create.lua" <<EOF
local n, file = 0, nil
function setup(thread) thread:set("id", tostring(thread)) end
function init() file = io.open("$WORK/tokens-" .. id:gsub("[^%w]", ""), "w") end
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.headers["Content-Type"] = "application/json"
function request()
  n = n + 1
  local who = tostring(math.random(1, 1000000))
  return wrk.format(nil, "/api/v1/realms/profile/sessions",  nil,
    '{"subject_id":"user' .. who .. '","display_name":"Person ' .. who .. '","client_ids":["portal"]}')
end
function response(status, headers, body)
  local token = body:match('"token":"([^"]+)"')
  if token then file:write(token, "\n") end
end
EOF
cat >"$WORK/validate.lua" <<EOF
local tokens = {}
for f in io.popen("ls $WORK/tokens-*"):lines() do
  for t in io.lines(f) do tokens[#tokens + 1] = t end
end
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.headers["Content-Type"] = "application/json"
function request()
  local t = tokens[math.random(1, #tokens)]
  return wrk.format(nil, "/api/v1/realms/profile/sessions/validate", nil, '{"token":"' .. t .. '"}')
end
EOF

# Samples what active client backends wait on until the file $WORK/stop exists.
sample_waits() {
  while [ ! -e "$WORK/stop" ]; do
    psql_ -c "SELECT coalesce(wait_event_type || ':' || wait_event, 'on CPU')
                FROM pg_stat_activity
               WHERE backend_type = 'client backend' AND state = 'active'
                 AND pid <> pg_backend_pid()" || true
    sleep 0.05
  done >"$WORK/waits"
}

profile() {
  local name=$1 script=$2
  psql_ -c "SELECT pg_stat_statements_reset()" >/dev/null
  local wal_before
  wal_before=$(psql_ -c "SELECT wal_records || ' ' || wal_fpi || ' ' || wal_bytes FROM pg_stat_wal")
  rm -f "$WORK/stop"
  sample_waits &
  local sampler=$!
  local rate
  rate=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$script" "http://$ADDR" \
    | awk '/Requests\/sec/ {print $2}')
  touch "$WORK/stop"
  wait "$sampler"
  local wal_after requests
  wal_after=$(psql_ -c "SELECT wal_records || ' ' || wal_fpi || ' ' || wal_bytes FROM pg_stat_wal")
  requests=$(awk -v r="$rate" -v d="${DURATION%s}" 'BEGIN {printf "%d", r * d}')
  echo
  echo "## $name: $rate requests/s ($CONNECTIONS connections, $DURATION)"
  echo
  # Write-ahead log per request (the whole server's: background steps included).
  echo "$wal_before $wal_after $requests" | awk '{n = $7 > 0 ? $7 : 1;
    printf "WAL per request: %.1f records, %.2f full-page images, %.0f bytes\n",
           ($4 - $1) / n, ($5 - $2) / n, ($6 - $3) / n}'
  echo
  echo "Statements by database time (pg_stat_statements):"
  echo
  echo "| share | calls | mean ms | total ms | statement |"
  echo "| ---: | ---: | ---: | ---: | --- |"
  psql_ -F ' | ' -c "
    SELECT round((100 * total_exec_time / sum(total_exec_time) OVER ())::numeric, 1) || ' %',
           calls, round(mean_exec_time::numeric, 3), round(total_exec_time::numeric, 0),
           left(regexp_replace(query, '\s+', ' ', 'g'), 110)
      FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'sessions')
     ORDER BY total_exec_time DESC LIMIT 8" | sed 's/^/| /; s/$/ |/'
  echo
  echo "What busy backends were doing (samples every 50 ms):"
  echo
  echo "| share | state |"
  echo "| ---: | --- |"
  sort "$WORK/waits" | uniq -c | sort -rn | head -8 |
    awk -v total="$(wc -l <"$WORK/waits")" '{c=$1; $1=""; printf "| %.1f %% |%s |\n", 100*c/total, $0}'
}

echo "# Where PostgreSQL's time goes ($("$PG_BIN/postgres" --version), $(nproc) cores)"
profile "create" "$WORK/create.lua"
echo
echo "($(cat "$WORK"/tokens-* | wc -l) sessions created)"
profile "validate" "$WORK/validate.lua"
