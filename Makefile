# eventflow: `make run` starts the whole system, `make test` runs the suite.
# Both create the virtualenv in .venv on first use and re-install it when
# pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=
MUTANTS ?=
BENCH_ARGS ?=
SCALING_ARGS ?=

.DEFAULT_GOAL := venv
.PHONY: run test mutants bench lint-imports venv clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(PY)
	@echo "Installing eventflow and its dependencies into $(VENV) (pip install -e '.[test,bench]')"
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $@

venv: $(INSTALLED)

# exec: Ctrl-C and SIGTERM reach devstack.run itself, which stops what it started.
run: $(INSTALLED)
	exec $(PY) -m devstack.run

test: $(INSTALLED)
	$(PY) -m pytest $(PYTEST_ARGS)

# Known faults applied one at a time to a copy of the tree; fails if the tests miss one.
mutants: $(INSTALLED)
	$(PY) tests/mutants.py $(MUTANTS)

# Then the scaling figure (1 and 2 workers per context, Redis and RabbitMQ): bench/scaling.py.
bench: $(INSTALLED)
	$(PY) -m bench $(BENCH_ARGS)
	$(PY) -m bench.scaling $(SCALING_ARGS)

lint-imports: $(INSTALLED)
	$(VENV)/bin/lint-imports

# Removes the local databases, Redis data and test artifacts; keeps .venv.
clean:
	rm -rf data .run test-artifacts .pytest_cache build *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
