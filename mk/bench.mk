# `make bench`: the pipeline's throughput beside its baselines (COPY, the seed's algorithm,
# pipelined XADD), in one run against private Redis and durable Postgres servers.
# Writes target/bench/results.json, BENCHMARKS.md and docs/bench-leads-per-s.svg.
# Included from the Makefile. BENCH_LEADS sets the size; DRAIN_READ_COUNT, BATCH_SIZE,
# BENCH_CONCURRENCY (HTTP connections, 8) and BENCH_DRAIN_TIMEOUT_S (60) pass through.

BENCH_LEADS ?= 100000

.PHONY: bench

## bench: release build, then measure (BENCH_LEADS=100000 by default).
bench: deps
	$(CARGO) build --release -p leads-bench -p leads-local -p import-fn -p drain-fn -p status-fn
	BENCH_LEADS=$(BENCH_LEADS) ./target/release/leads-bench
