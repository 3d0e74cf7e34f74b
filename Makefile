# Everything sets itself up: a virtual environment in .venv with the package (editable)
# and what the tests need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test image-test soak fuzz lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/ruff check metric_reader plugin_dir examples tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m metric_reader test examples/tests/*.yml
	# 8 workers on 2 cores: the parallel tests mostly wait on timers, processes and a real
	# Prometheus (the phase uses about half a core), so more of them overlap their waits.
	$(BIN)/python -m pytest -q -n 8 -m 'not serial'
	sync  # the serial tests time themselves: the parallel ones' writes reach the disk first
	$(BIN)/python -m pytest -q -m serial

# The container image: built offline with podman on a debootstrapped Debian base, then run as
# a sidecar against a real Prometheus (needs root and podman; skipped, with the reason, where
# podman cannot run containers). See docs/container.md.
image-test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/image

# The soak test for 10 minutes (make test runs the same test for 20 s).
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

# Fuzz the exposition reader with atheris (libFuzzer) for FUZZ_TIME seconds; see
# docs/fuzzing.md. atheris is installed here, on demand: `make test` never needs it.
FUZZ_TIME ?= 1800

fuzz: $(STAMP)
	$(BIN)/pip install --quiet atheris
	mkdir -p fuzz/work/corpus fuzz/crashes
	cd fuzz/work && PATH="$(abspath $(BIN)):$$PATH" ../fuzz_exposition.py -jobs=1 \
		-max_total_time=$(FUZZ_TIME) -timeout=10 -max_len=4096 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix=../crashes/ corpus ../corpus
	tail -n 7 fuzz/work/fuzz-0.log
	@if ls fuzz/crashes/* >/dev/null 2>&1; then echo "fuzz: inputs in fuzz/crashes/:"; \
		ls fuzz/crashes; exit 1; fi

