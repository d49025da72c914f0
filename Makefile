# cellops: the two commands in README.md are `make quickstart` and `make test`.
# Both set up .venv on first use (pinned CPU torch first: an unpinned one pulls a CUDA build);
# `make test` also sets up the test-only Phoenix and Airflow venvs.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cellops-installed

.PHONY: setup test-setup quickstart test bench lint clean

# setup: cellops itself (all the quickstart needs); test-setup adds the two test-only services
setup: $(STAMP)
test-setup: setup $(VENV)-phoenix/bin/phoenix $(VENV)-airflow/bin/airflow

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel setuptools
	$(PY) -m pip install -q torch==2.13.0
	bash scripts/system-deps.sh
	bash extension/build.sh
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Arize Phoenix (the trace-export tests' collector) pins its own stack: a venv of its own
$(VENV)-phoenix/bin/phoenix:
	test -x $(VENV)-phoenix/bin/python || python3 -m venv $(VENV)-phoenix
	$(VENV)-phoenix/bin/pip install -q 'arize-phoenix==20.26.1'

# Apache Airflow (the exported-DAG test) pins its own stack too: every package in requirements-airflow.txt
$(VENV)-airflow/bin/airflow: requirements-airflow.txt
	test -x $(VENV)-airflow/bin/python || python3 -m venv $(VENV)-airflow
	$(VENV)-airflow/bin/pip install -q -r requirements-airflow.txt
	touch $@

quickstart: setup
	$(VENV)/bin/cellops quickstart

test: test-setup
	bash scripts/system-deps.sh
	$(VENV)/bin/pytest -q --durations=15

bench: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) $(VENV)-phoenix $(VENV)-airflow build src/*.egg-info
