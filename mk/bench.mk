# `make bench`: the pipeline's throughput beside its baselines (COPY, the seed's algorithm,
# pipelined XADD), the durable payload's cost, the latency from an import's 202 to completed
# (local run and cargo lambda watch), and drain scaling with concurrent drains, in one run
# against private Redis and durable Postgres servers.
# Writes target/bench/results.json, BENCHMARKS.md and docs/bench-leads-per-s.svg.
# Included from the Makefile. BENCH_LEADS sets the size; DRAIN_READ_COUNT, BATCH_SIZE,
# BENCH_CONCURRENCY (HTTP connections, 8), BENCH_DRAIN_TIMEOUT_S (60), BENCH_LATENCY_RUNS
# (100), BENCH_SCALE_LEADS (500000; 0 skips), BENCH_SCALE_DRAINS (1,2,4), BENCH_WATCH_RUNS
# (20; 0 skips) and BENCH_OLD_RESULTS (an older run's results.json to show beside) pass
# through. Honours CARGO_TARGET_DIR.

BENCH_LEADS ?= 100000

.PHONY: bench

## bench: release build, then measure (BENCH_LEADS=100000 by default).
bench: deps
	$(CARGO) build --release -p leads-bench -p leads-local -p import-fn -p drain-fn -p status-fn
	BENCH_LEADS=$(BENCH_LEADS) "$${CARGO_TARGET_DIR:-target}/release/leads-bench"
