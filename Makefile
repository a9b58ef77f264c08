# Two commands set everything up on a fresh machine:
#   make train TASK=traffic_signs   # venv, install, sample data, train, evaluate, export, summary
#   make test                       # venv, install with test extra, run the tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TASK   ?= traffic_signs
RECIPE ?= default
STAMP  := $(VENV)/.installed

.PHONY: train test fuzz bench venv clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

train: $(STAMP)
	$(BIN)/suite train $(TASK) --recipe $(RECIPE)
	$(BIN)/suite export $(TASK)
	$(BIN)/suite list

test: $(STAMP)
	$(BIN)/python -m mypy        # The Task contract, checked over suite/ and tasks/ (setup.cfg [mypy]).
	$(BIN)/python -m pytest -q -n 3 --dist loadgroup --no-loadscope-reorder   # Three workers on 2 cores; see tests/conftest.py.

fuzz: $(STAMP)  # 1,000 mutated inputs per export endpoint and per loader (make test runs 20).
	SUITE_FUZZ_COUNT=1000 $(BIN)/python -m pytest -q -n 2 --dist loadgroup --no-loadscope-reorder tests/test_fuzz.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf runs reports .pytest_cache
