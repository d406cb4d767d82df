# Fuzzing against the contract, included by the Makefile: `make fuzz`.
#
# Builds leads-local, starts it on a free port with its own private Redis and Postgres, and runs
# schemathesis (PyPI; installed with pip when missing) from openapi.yaml once per seed: fixed
# seeds and a bounded number of generated cases, with every check schemathesis has (server
# errors, undocumented status codes or content types, responses or headers that do not match
# their schema, schema-violating requests accepted, schema-valid requests refused, methods,
# ...); its settings are in mk/schemathesis.toml. About two minutes on the 2-core machine.
# leads-local is stopped afterwards, pass or fail.
#
#   make fuzz                          the default run (seeds and size below)
#   make fuzz FUZZ_EXAMPLES=1000       more cases per operation
#   make fuzz FUZZ_SEEDS=7             one other reproducible run

FUZZ_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)

PYTHON ?= python3
CARGO ?= cargo
FUZZ_SEEDS ?= 11 20261128 1 2 3
# Per operation and phase (examples, coverage, fuzzing): about 700 requests per seed.
FUZZ_EXAMPLES ?= 300
FUZZ_CHECKS ?= all
# pip puts schemathesis in the interpreter's scripts directory (or the user base's bin with
# --user), which need not be on PATH.
FUZZ_PATH = $(shell $(PYTHON) -c 'import site, sysconfig; print(sysconfig.get_path("scripts") + ":" + site.getuserbase() + "/bin")' 2>/dev/null):$$PATH

.PHONY: fuzz

## fuzz: schemathesis against leads-local from openapi.yaml (fixed seed, bounded cases).
fuzz:
	@export PATH="$(FUZZ_PATH)"; \
	if ! command -v schemathesis >/dev/null; then \
	  echo "installing schemathesis"; \
	  $(PYTHON) -m pip install --quiet schemathesis || $(PYTHON) -m pip install --quiet --user schemathesis; \
	fi
	cd $(FUZZ_ROOT) && $(CARGO) build -q -p leads-local
	@cd $(FUZZ_ROOT); export PATH="$(FUZZ_PATH)"; \
	port=$$($(PYTHON) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	log=$$(mktemp); \
	env -u REDIS_URL -u DATABASE_URL PORT=$$port RUST_LOG=warn "$${CARGO_TARGET_DIR:-target}/debug/leads-local" >"$$log" 2>&1 & pid=$$!; \
	stop() { kill -TERM $$pid 2>/dev/null; wait $$pid 2>/dev/null; rm -f "$$log"; }; \
	trap stop EXIT; \
	for i in $$(seq 1 240); do \
	  curl -s -o /dev/null "http://127.0.0.1:$$port/leads/import/ready/status" && break; \
	  kill -0 $$pid 2>/dev/null || { echo "leads-local did not start:"; cat "$$log"; exit 1; }; \
	  sleep 0.5; \
	done; \
	status=0; \
	for seed in $(FUZZ_SEEDS); do \
	  echo "fuzzing leads-local on 127.0.0.1:$$port (seed $$seed, $(FUZZ_EXAMPLES) examples per operation, checks $(FUZZ_CHECKS))"; \
	  SCHEMATHESIS_TELEMETRY=false schemathesis --config-file mk/schemathesis.toml run openapi.yaml \
	    --url "http://127.0.0.1:$$port" \
	    --seed $$seed \
	    --max-examples $(FUZZ_EXAMPLES) \
	    --phases examples,coverage,fuzzing \
	    --checks $(FUZZ_CHECKS) \
	    --workers 1 \
	    --request-timeout 30 \
	    --suppress-health-check too_slow,filter_too_much \
	    --no-color || status=1; \
	done; \
	if [ $$status -ne 0 ]; then echo "leads-local log:"; tail -n 50 "$$log"; fi; \
	exit $$status
