# The commands that matter: `make run` (the local stack), `make check` (the quick tier: no
# servers, for the inner loop) and `make test` (every test; what CI runs). `make run` and
# `make test` install what is missing (redis-server, PostgreSQL) when they can.

SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: run check test deps lint fmt clippy doc docs unit unit-fast emulator migrate dead-letters redrive erase-dead-letters

include mk/fuzz.mk
include mk/bench.mk
include mk/deploy.mk

## run: build and start leads-local on 127.0.0.1:$PORT (default 3000), with private Redis and
## Postgres unless REDIS_URL / DATABASE_URL are set. Ctrl-C stops everything.
run: deps
	$(CARGO) build -p leads-local
	DEFAULT_CREATED_BY="$${DEFAULT_CREATED_BY:-$${USER:-local}}" "$${CARGO_TARGET_DIR:-target}/debug/leads-local"

## check: formatting, clippy, the docs' links and the unit tests; no servers, no network.
check: fmt clippy docs unit-fast

## test: formatting, lints, every cargo test, the functions under the Lambda runtime emulator,
## and schemathesis against the OpenAPI contract; all against real Redis and Postgres servers.
test: deps lint unit emulator fuzz

## lint: rustfmt, clippy, and the SAM template (sam validate, sam validate --lint, cfn-lint).
lint: fmt clippy doc docs lint-template

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The library's docs, private items included, build without a broken link.
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p shared --no-deps --document-private-items

# README and docs/: every relative link resolves, the README stays short.
docs:
	$(PYTHON) scripts/check_docs.py

unit:
	$(CARGO) test --workspace

# The library's and binaries' own tests: pure, no servers.
unit-fast:
	$(CARGO) test --workspace --lib --bins

## emulator: the three functions under `cargo lambda watch`, invoked with events/.
emulator:
	bash scripts/lambda-emulator-test.sh

## migrate: apply migrations/ to $DATABASE_URL, as the tables' owner (docs/deploy.md); with
## DATABASE_AUTH=iam or secret it signs with your AWS login (environment, SSO, AWS_PROFILE).
migrate:
	@test -n "$$DATABASE_URL" || { echo "set DATABASE_URL=postgres://user@host:5432/db"; exit 1; }
	$(CARGO) run -q -p leads-local -- migrate

## dead-letters: list lead:imports:dead (original fields and reason) on $REDIS_URL. With
## REDIS_AUTH=iam (REDIS_IAM_USER, REDIS_IAM_CACHE_ARN, AWS credentials in the environment)
## it signs in with an IAM token; with REDIS_CLUSTER=true it follows cluster redirects.
dead-letters:
	@test -n "$$REDIS_URL" || { echo "set REDIS_URL"; exit 1; }
	@if [ "$${REDIS_AUTH:-password}" = iam ]; then \
	  REDISCLI_AUTH="$$($(CARGO) run -q -p leads-local -- cache-token)" || exit 1; export REDISCLI_AUTH; \
	  set -- --user "$$REDIS_IAM_USER"; \
	else set --; fi; \
	if [ "$${REDIS_CLUSTER:-false}" = true ]; then set -- "$$@" -c; fi; \
	redis-cli -u "$${REDIS_URL%%,*}" "$$@" XRANGE "$${REDIS_KEY_PREFIX}lead:imports:dead" - +

## redrive: put dead letters back on the stream (all, or ID=<dead letter id>) once their cause
## is fixed; needs REDIS_URL and DATABASE_URL of the deployment.
redrive:
	$(CARGO) run -q -p leads-local -- redrive $(ID)

## erase-dead-letters: delete dead letters (all, or ID=<dead letter id>) and the personal data
## they hold, on $REDIS_URL; their leads stay failed. (They expire after
## DEAD_LETTER_RETENTION_DAYS anyway.)
erase-dead-letters:
	$(CARGO) run -q -p leads-local -- erase-dead-letters $(ID)

## deps: install redis-server and the PostgreSQL server binaries if they are missing.
deps:
	@if ! command -v redis-server >/dev/null; then \
	  echo "installing redis-server"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server >/dev/null; \
	fi
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing PostgreSQL"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql >/dev/null; \
	fi
	@if [ "$$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then \
	  echo "adding the postgres user (Postgres refuses to run as root)"; \
	  useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/false postgres; \
	fi
	@command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install redis-server"; exit 1; }
