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
examples=${OPENAPI_FUZZ_EXAMPLES:-20}
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

call() { # method path [json body]
  curl -fsS -X "$1" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "$base$2"
}
# Objects for the fuzzer to find: a realm, a client, a session, a consent.
call PUT /api/v1/realms/fuzz '{"property_whitelist": ["theme"]}' >/dev/null
call PUT /api/v1/realms/fuzz/clients/portal '{"name": "Portal"}' >/dev/null
sid=$(call POST /api/v1/realms/fuzz/sessions \
  '{"subject_id": "alice", "client_ids": ["portal"], "properties": {"theme": "dark"}}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["sid"])')

curl -fsS "$base/api/v1/openapi.json" >"$work/openapi.json"
echo "==> openapi-spec-validator"
"$tools/openapi-spec-validator" "$work/openapi.json" 2>&1 | cut -c1-2000

# Requests name the objects above some of the time, so the fuzzer gets past "not found".
sed -e "s/@SID@/$sid/" -e "s|@HOOKS@|$PWD/scripts/schemathesis_hooks.py|" scripts/schemathesis.toml \
  >"$work/schemathesis.toml"

echo "==> schemathesis: $examples examples per operation, seed $seed"
status=0
"$tools/st" --config-file "$work/schemathesis.toml" run "$base/api/v1/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,positive_data_acceptance,negative_data_rejection \
  --phases examples,coverage,fuzzing --mode all \
  --max-examples "$examples" --seed "$seed" --workers 2 \
  --generation-database none --no-color \
  --report ndjson --report-ndjson-path "$PWD/target/openapi-check.ndjson" || status=$?

python3 - target/openapi-check.ndjson "$status" <<'PY'
import json, sys
operations, requests, failures = set(), 0, 0
for line in open(sys.argv[1]):
    event = json.loads(line)
    for kind, data in event.items():
        if kind == "ScenarioFinished":
            label = data.get("label")
            if label:
                operations.add(label)
            recorder = data.get("recorder", {})
            requests += sum(len(i) for i in recorder.get("interactions", {}).values()) if isinstance(recorder.get("interactions"), dict) else 0
            for checks in recorder.get("checks", {}).values():
                failures += sum(1 for c in checks if c.get("status") == "FAILURE")
print(f"openapi-check: {len(operations)} operations, {requests} requests, {failures} failed checks "
      f"(schemathesis exit code {sys.argv[2]})")
PY
if [ "$status" -ne 0 ]; then
  echo "openapi-check: the server and its OpenAPI document disagree (see above)" >&2
  exit "$status"
fi
