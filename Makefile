# Everything sets itself up: a virtual environment in .venv with the package (editable)
# and what the tests need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test soak lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/ruff check metric_reader plugin_dir examples tests benchmarks
	$(BIN)/python -m pytest -q

# The soak test for 10 minutes (make test runs the same test for 45 s).
soak: $(STAMP)
	SOAK_SECONDS=600 $(BIN)/python -m pytest -q -s tests/faults/test_soak.py

lint: $(STAMP)
	$(BIN)/ruff check metric_reader plugin_dir examples tests benchmarks
	$(BIN)/ruff format --check metric_reader plugin_dir examples tests benchmarks

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
