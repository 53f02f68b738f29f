# The front door: make run, make test, make lint, make bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := FLASK_APP=wsgi $(BIN)/flask
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# pytest-xdist workers, one per core (each with its own app and databases); PYTEST_ARGS=-n0
# runs in one process, and extra arguments go here too (PYTEST_ARGS="-n0 -k dosing").
PYTEST_ARGS ?= -n auto
# pytest exits 5 when it collected no test: a selection gone wrong, so say it and fail.
PYTEST = $(BIN)/python -m pytest $(PYTEST_ARGS) \
  || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests" >&2; exit $$rc; }
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run prod test test-sqlite test-postgres test-e2e lint security audit-deps bench bench-dashboard bench-exports clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed"'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## run: install, migrate the embedded SQLite database, seed demo data once, serve on :5000
## with the report scheduler beside it (stopped with the server)
run: $(BIN)/.installed
	$(FLASK) db upgrade
	$(FLASK) demo seed --if-empty
	@echo "trialmgr on http://$(HOST):$(PORT), report scheduler beside it  (Ctrl-C stops both)"
	@$(FLASK) scheduler run & scheduler=$$!; \
	trap 'kill $$scheduler 2>/dev/null' EXIT INT TERM; \
	$(FLASK) run --host $(HOST) --port $(PORT)

## prod: the production topology on one machine: PostgreSQL, gunicorn (4 workers) and two
## schedulers, one active, one standing by (scripts/prod.sh; SEED=1 loads the demo data)
prod: $(BIN)/.installed
	scripts/prod.sh

## test: the whole suite on SQLite, then on PostgreSQL
test: test-sqlite test-postgres

test-sqlite: $(BIN)/.installed
	TEST_DATABASE_URL= $(PYTEST)

test-postgres: $(BIN)/.installed
	@$(BIN)/python -c 'import psycopg, sys; psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=5).close()' \
	  || { echo "PostgreSQL is not answering on 127.0.0.1:5432 (start it: pg_ctlcluster --skip-systemctl-redirect \$$(ls /etc/postgresql) main start)"; exit 1; }
	TEST_DATABASE_URL=$(PG_TEST_URL) $(PYTEST)

## test-e2e: the API fuzzing and the fault injection (tests/e2e: real servers and schedulers),
## on SQLite then on PostgreSQL; FUZZ_EXAMPLES=n examples per operation, role and mode
E2E_ARGS ?= -n 2
E2E = $(BIN)/python -m pytest $(E2E_ARGS) tests/e2e \
  || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests" >&2; exit $$rc; }
test-e2e: $(BIN)/.installed
	TEST_DATABASE_URL= $(E2E)
	TEST_DATABASE_URL=$(PG_TEST_URL) $(E2E)

lint: $(BIN)/.installed
	$(BIN)/ruff check trialmgr tests bench
	$(BIN)/ruff format --check trialmgr tests bench
	$(BIN)/mypy

## security: bandit on trialmgr/ at medium severity and confidence (must be clean)
security: $(BIN)/.installed
	$(BIN)/bandit -q -r trialmgr scripts --severity-level medium --confidence-level medium

## audit-deps: pip-audit on the pinned dependencies (fails on a known vulnerability; an
## unreachable vulnerability service is reported, not failed)
audit-deps: $(BIN)/.installed
	$(BIN)/python scripts/pip_audit_gate.py

## bench: benchmarks as ratios to baselines measured in the same run (SCALE=small|medium|large, DB=sqlite|postgres)
SCALE ?= small
DB ?= sqlite
bench: $(BIN)/.installed
	$(BIN)/python -m bench --scale $(SCALE) --db $(DB)

## bench-dashboard: the safety dashboard at 20 sites / 10,000 subjects / 1,000,000 AEs
##   against the equivalent hand-written SQL (SQLite; add ARGS=--postgres for PostgreSQL)
bench-dashboard: $(BIN)/.installed
	$(BIN)/python -m bench.safety_dashboard $(ARGS)

## bench-exports: each export of a 10,000-subject trial against a bare SQL dump to CSV
##   (time and peak RSS; ARGS=--postgres for PostgreSQL)
bench-exports: $(BIN)/.installed
	$(BIN)/python -m bench.exports $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache
