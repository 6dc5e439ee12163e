# The two commands: `make run` and `make test`. Everything else is a helper.
.PHONY: run test setup build release unit e2e lint fmt bench bench-http

# cargo-leptos takes wasm-opt (Binaryen) from PATH, else downloads it from GitHub. setup.sh installs
# it from npm into tools/node_modules, so every build here works offline.
export PATH := $(CURDIR)/tools/node_modules/.bin:$(PATH)

DATA_DIR ?= ./data
ADDR ?= 127.0.0.1:3000

setup:
	./scripts/setup.sh

build: setup
	cargo leptos build

## The production build: target/release/server and target/site with the size-optimised WASM
## (the `wasm-release` profile, then `wasm-opt -Oz`). Prints the WASM's size, raw and gzipped.
release: setup
	cargo leptos build --release
	@wasm=target/site/pkg/sessions-admin.wasm; \
	  echo "release WASM: $$(stat -c %s $$wasm) bytes, $$(gzip -9c $$wasm | wc -c) gzipped"

## Builds and serves the dashboard and API on an embedded store in $(DATA_DIR), with a demo realm.
## Signs in as `admin` with $(ADMIN_PASSWORD) (change it: make run ADMIN_PASSWORD=...).
ADMIN_PASSWORD ?= change-me-now
run: build
	@echo ""
	@echo "  Dashboard: http://$(ADDR)/   sign in as 'admin' with password '$(ADMIN_PASSWORD)'"
	@echo "  API docs:  http://$(ADDR)/api/v1/docs"
	@echo ""
	SESSIONS_DATA_DIR=$(DATA_DIR) SESSIONS_ADDR=$(ADDR) SESSIONS_ADMIN_PASSWORD=$(ADMIN_PASSWORD) SESSIONS_PLAIN_HTTP_COOKIES=true target/debug/server serve --demo

## Every test: unit, property and HTTP tests, then the browser tests against the production build
## (built once, so it cannot break unnoticed), on the embedded store and on a scratch PostgreSQL.
## cargo-leptos builds last: it compiles the server with its own environment (the WASM file name),
## which a plain cargo build of the same binary would undo.
test: setup
	cargo test --workspace --exclude frontend
	$(MAKE) --no-print-directory release
	SERVER_BIN=target/release/server ./scripts/openapi-check.sh
	cargo build -p service --features geoip-fixture --bin geoip-fixture
	cargo build -p store-postgres --bin with-scratch-postgres
	cd end2end && E2E_SERVER=../target/release/server npx playwright test
	cd end2end && E2E_SERVER=../target/release/server E2E_STORE=postgres npx playwright test

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --exclude frontend --all-targets -- -D warnings
	cargo clippy -p frontend -p app --features app/hydrate --target wasm32-unknown-unknown -- -D warnings

fmt:
	cargo fmt --all

## Prints a table of store figures (create, validate, queries, deep pages, removals, disk, open
## time from a cold page cache where permitted, resident memory) and writes it to BENCHMARKS.md
## with the machine and the date. SESSIONS=n for another size.
bench:
	BENCH_OUT=$(CURDIR)/BENCHMARKS.md cargo run --release -p sessions --example bench -- $(or $(SESSIONS),1000000)

## Through HTTP, side by side: our release server, Duende IdentityServer's server-side session
## store (its table, indexes and SQL) on a scratch PostgreSQL, and a do-nothing axum handler, each
## driven by wrk on 127.0.0.1 with the same generated data. Prints a table and writes it into
## BENCHMARKS.md (its own section) with bench-http.svg. SIZES and DURATION for a quicker run:
## make bench-http SIZES=10000 DURATION=5s
SIZES ?= 10000 100000 1000000
DURATION ?= 4s
bench-http: release
	@command -v wrk >/dev/null || { sudo=""; [ "$$(id -u)" -ne 0 ] && sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq wrk; }
	cargo build --release -p bench-http
	cargo build --release -p service --features geoip-fixture --bin geoip-fixture
	$${CARGO_TARGET_DIR:-target}/release/bench-http run --server $${CARGO_TARGET_DIR:-target}/release/server \
	  --sizes "$(SIZES)" --duration $(DURATION) --out BENCHMARKS.md --chart bench-http.svg
