# Two commands matter: `make run` (the local stack) and `make test`.
# Both install what they need into .venv and node_modules first.

# Lambda's python3.12 runtime is the deploy target (see README, "Python version");
# locally any Python >= 3.11 works, 3.12 is preferred when present.
PYTHON ?= $(shell for p in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
NODE_STAMP := node_modules/.installed

.PHONY: install run test lint bench load clean

install: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "need Python >= 3.11 (python3)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(BIN)/python scripts/local_stack.py

# A bounded load run on loopback against its own local stack; LOAD_ARGS, e.g.
# `--misses 400 --hits 5000 --concurrency 64`, go to scripts/load.py.
load: install
	$(BIN)/python scripts/load.py $(LOAD_ARGS)

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
test: install lint
	$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$status

$(BENCH_STAMP): requirements-bench.txt $(PY_STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

# The pipeline table (scripts/bench.py), then miss/hit timing through the local stack.
# BENCH_ARGS="--quick" for fewer rounds, "--photos DIR" for your own JPEGs.
bench: install $(BENCH_STAMP)
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)
	$(BIN)/python scripts/bench_stack.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules .local .pytest_cache .ruff_cache .hypothesis
