#!/usr/bin/env bash
# The API's contract, checked against the real server: the served OpenAPI document must validate
# (openapi-spec-validator), and an OpenAPI-driven fuzzer (schemathesis) then sends requests built
# from it, valid and invalid, for a bounded number of examples per operation. It fails on any 5xx,
# any answer the document does not describe (status, content type, body schema), any valid request
# refused and any invalid one accepted.
#
# Needs the server binary (`cargo leptos build` or `cargo build -p server`) and the tools that
# scripts/setup.sh installs into target/pyenv. Tunable: OPENAPI_FUZZ_EXAMPLES (per operation),
# OPENAPI_FUZZ_SEED, SERVER_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

server=${SERVER_BIN:-${CARGO_TARGET_DIR:-target}/debug/server}
tools=target/pyenv/bin
examples=${OPENAPI_FUZZ_EXAMPLES:-100}
seed=${OPENAPI_FUZZ_SEED:-14}
key="openapi-check-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

for tool in "$server" "$tools/st" "$tools/openapi-spec-validator"; do
  [ -x "$tool" ] || { echo "openapi-check: $tool is missing (run make setup and build the server)" >&2; exit 1; }
done

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
SESSIONS_BOOTSTRAP_API_KEY="$key" RUST_LOG=warn "$server" serve --addr "127.0.0.1:$port" \
  --data-dir "$work/data" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.2
done

# Requests the server has answered so far, by its own metrics.
requests_served() {
  curl -fsS "$base/metrics" | awk '/^http_requests_total/ { n += $NF } END { print n + 0 }'
}

call() { # method path [json body]
  curl -fsS -X "$1" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "$base$2"
}
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

# Objects for the fuzzer to find: a realm, a client, a session with its token, a consent.
call PUT /api/v1/realms/fuzz '{"property_whitelist": ["theme"]}' >/dev/null
call PUT /api/v1/realms/fuzz/clients/portal '{"name": "Portal"}' >/dev/null
call POST /api/v1/realms/fuzz/sessions \
  '{"subject_id": "alice", "client_ids": ["portal"], "properties": {"theme": "dark"}}' \
  >"$work/session.json"
sid=$(field "$work/session.json" sid)
token=$(field "$work/session.json" token)
expires=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
call POST /api/v1/realms/fuzz/grants "{\"kind\": \"consent\", \"subject_id\": \"alice\", \
  \"sid\": \"$sid\", \"client_id\": \"portal\", \"expires_at\": \"$expires\"}" >/dev/null

curl -fsS "$base/api/v1/openapi.json" >"$work/openapi.json"
echo "==> openapi-spec-validator"
"$tools/openapi-spec-validator" "$work/openapi.json" 2>&1 | cut -c1-2000

# Requests name the objects above some of the time, so the fuzzer gets past "not found".
sed -e "s/@SID@/$sid/" -e "s/@TOKEN@/$token/" -e "s/@KEY@/$key/" \
  -e "s|@HOOKS@|$PWD/scripts/schemathesis_hooks.py|" scripts/schemathesis.toml \
  >"$work/schemathesis.toml"

# One worker: the fuzzer's generator is not thread-safe (it fails with "AST constructor
# recursion depth mismatch" under two).
fuzz() { # label, then st run arguments
  local label=$1
  shift
  echo "==> schemathesis ($label): $examples examples per operation, seed $seed"
  (cd "$work" && "$OLDPWD/$tools/st" --config-file schemathesis.toml run "$base/api/v1/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,positive_data_acceptance,negative_data_rejection \
    --phases examples,coverage,fuzzing --mode all \
    --max-examples "$examples" --seed "$seed" --workers 1 \
    --generation-with-security-parameters false --generation-database none --no-color "$@") 2>&1 |
    tee -a "$work/st.log" || status=$?
}

before=$(requests_served)
status=0
# The fuzzer reuses names it reads from answers, so it would revoke its own key (every later
# answer a 401): key revocation runs last, on its own.
fuzz "every operation but key revocation" --exclude-operation-id revoke_api_key
if [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "$base/api/v1/realms")" != 200 ]; then
  echo "openapi-check: the fuzzer's key stopped working during the run" >&2
  status=1
fi
fuzz "key revocation" --include-operation-id revoke_api_key

operations=$(sed -n 's/^ *Tested: *\([0-9]*\).*/\1/p' "$work/st.log" | awk '{ n += $1 } END { print n }')
cases=$(grep -A1 '^Test cases:' "$work/st.log" | grep -v -e '^Test cases:' -e '^--$' | sed 's/^ *//' |
  paste -sd';' | sed 's/;/; /')
requests=$(($(requests_served) - before))
echo "openapi-check: answers by status: $(curl -fsS "$base/metrics" | awk '
  /^http_requests_total/ { match($0, /status="[0-9]+"/); s = substr($0, RSTART + 8, 3); n[s] += $NF }
  END { for (s in n) printf "%s: %d, ", s, n[s] }' | sed 's/, $//')"
echo "openapi-check: $operations operations, $requests requests; test cases: $cases"
if [ "$status" -ne 0 ]; then
  echo "openapi-check: the server and its OpenAPI document disagree (see above)" >&2
  exit "$status"
fi
