#!/usr/bin/env bash
# Installs what building and testing need, each piece only if it is missing. Safe to run often.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "0.3.0" ]; then
  say "installing cargo-leptos 0.3.0 (about 10 minutes, once)"
  cargo install cargo-leptos --version 0.3.0 --locked
fi

# The wasm-bindgen CLI must equal the wasm-bindgen crate in Cargo.lock exactly.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ -n "$want" ] && [ "$have" != "$want" ]; then
  say "installing wasm-bindgen-cli $want (Cargo.lock's version)"
  cargo install wasm-bindgen-cli --version "$want" --force
fi

# Debian's PostgreSQL: the second storage engine's tests start a scratch server of it (nothing
# needs to be running).
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  say "installing PostgreSQL for the PostgreSQL backend's tests"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql
fi

# pg_auto_failover, for the failover test (server/tests/postgres_failover.rs): a monitor, a
# primary and a synchronous secondary of the same PostgreSQL version.
pg_version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if [ ! -x /usr/bin/pg_autoctl ] || [ ! -e "/usr/lib/postgresql/$pg_version/lib/pgautofailover.so" ]; then
  say "installing pg_auto_failover for PostgreSQL $pg_version (the failover test)"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq \
    "postgresql-$pg_version-auto-failover" pg-auto-failover-cli
fi

# The OpenAPI contract check (scripts/openapi-check.sh): a validator and a fuzzer from PyPI, in a
# virtualenv under the ignored target/ directory.
openapi_tools="schemathesis==4.32.5 openapi-spec-validator==0.9.0"
if [ "$(cat target/pyenv/.installed 2>/dev/null)" != "$openapi_tools" ]; then
  say "installing the OpenAPI test tools ($openapi_tools) into target/pyenv"
  python3 -m venv target/pyenv
  # shellcheck disable=SC2086 # the list is meant to split into packages
  target/pyenv/bin/pip install -q --disable-pip-version-check $openapi_tools
  echo "$openapi_tools" >target/pyenv/.installed
fi

# wasm-opt (Binaryen) shrinks the release WASM. cargo-leptos would download it from GitHub; the npm
# package, pinned by tools/package-lock.json, is installed into tools/node_modules instead (the
# Makefile puts its .bin on PATH).
if [ ! -x tools/node_modules/.bin/wasm-opt ]; then
  say "installing wasm-opt (Binaryen, from npm) into tools/node_modules"
  (cd tools && npm ci --no-audit --no-fund)
fi

if [ "${SETUP_BROWSER:-1}" = "1" ]; then
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Chromium for the browser tests"
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium
  fi
  if [ ! -d end2end/node_modules/@playwright/test ]; then
    say "installing the Playwright test runner"
    (cd end2end && npm ci --no-audit --no-fund)
  fi
fi
