# The README's two commands: `make run` and `make test`. Both create .venv as needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_STORE ?= $(CURDIR)/demo-store.db

.PHONY: run test test-full reliability lint bench bench-small bench-projections bench-sources bench-timetravel bench-console bench-console-timetravel bench-relay clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

## Open the console on a demo store (created and seeded on first run).
run: $(VENV)/.installed
	$(BIN)/eventscope --store "$(DEMO_STORE)" gui --demo

## Lint, type-check, check the dependency rule, then run the whole suite offscreen.
test: $(VENV)/.installed-test lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; \
	exit $$rc

## The suite with the long crash tests: 50 kill -9 rounds of a rebuilding worker, and
## relays killed with -9 at random points over 100,000 events on each broker.
test-full: $(VENV)/.installed-test lint
	EVENTSCOPE_KILL_ROUNDS=50 EVENTSCOPE_RELAY_EVENTS=100000 QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

## Reliability studies with their full counts; rewrites docs/reliability.md (long).
reliability: $(VENV)/.installed-test
	EVENTSCOPE_TEST_PG_URL=$${EVENTSCOPE_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m tests.reliability.run $(RELIABILITY_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check core console plugins tests
	$(BIN)/ruff format --check core console plugins tests
	$(BIN)/mypy
	$(BIN)/lint-imports

## Benchmarks: ratios against raw sqlite3 and the eventsourcing library, same run, after
## the library's own recorder contract tests pass on Eventscope's store (and on its own).
## The library's tests on its own recorders only inform: its concurrent-throughput test
## crashed CPython once here (a segfault in its threads), which must not stop the bench.
bench: $(VENV)/.installed-bench
	$(BIN)/python -m unittest -q $(addprefix tests.benchmarks.eventsourcing_contract.,EventscopeAggregateRecorderTest EventscopeApplicationRecorderTest)
	-$(BIN)/python -m unittest -q $(addprefix tests.benchmarks.eventsourcing_contract.,SQLiteAggregateRecorderTest SQLiteApplicationRecorderTest)
	$(BIN)/python -m tests.benchmarks.run $(BENCH_ARGS)

## Only bench's small-operation rows (6-10, against the eventsourcing recorder on a RAM
## disk), printed with profiles of the misses; BENCH_ARGS="--output FILE" writes them.
bench-small: $(VENV)/.installed-bench
	$(BIN)/python -m tests.benchmarks.run --small-only --profile $(BENCH_ARGS)

## Projection benchmarks on a ~1M-event orders demo store (built once, cached; --profile).
bench-projections: $(VENV)/.installed-bench
	$(BIN)/python -m tests.benchmarks.projections --profile $(BENCH_ARGS)

## Other tools' stores: the console and import-from on a 1M-event store the eventsourcing
## library writes (built once, cached).
bench-sources: $(VENV)/.installed-bench
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m tests.benchmarks.sources $(BENCH_ARGS)

## Time-travel benchmarks on the same ~1M-event store (pages, documents, lineage, diff; --profile).
bench-timetravel: $(VENV)/.installed-bench
	$(BIN)/python -m tests.benchmarks.timetravel --profile $(BENCH_ARGS)

## Console benchmarks: the event log on a 10M-event store, then time travel and compare on
## the 1M-event orders store (both built once, cached; several minutes).
bench-console: $(VENV)/.installed-bench
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m tests.benchmarks.console $(BENCH_ARGS)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m tests.benchmarks.console_timetravel

## Only the time-travel and compare figures of bench-console.
bench-console-timetravel: $(VENV)/.installed-bench
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m tests.benchmarks.console_timetravel $(BENCH_ARGS)

## The relay against bare nats-py and aio-pika publishers (same messages, same run), and
## append-to-published latency of `eventscope relay`; needs NATS JetStream at 127.0.0.1:4222
## and RabbitMQ at 127.0.0.1:5672 (guest). Rewrites docs/benchmarks-relay.md (~4 min).
bench-relay: $(VENV)/.installed-bench
	$(BIN)/python -m tests.benchmarks.relay $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
