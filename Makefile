# `make demo`: set up, then ingest the packaged GloVe 6B 50d and ask it a few questions.
# `make test`: set up, then run the tests (what .ci/run does).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench floors clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

demo: setup
	@# ingest the packaged GloVe once: a store that already answers is left as it is
	$(BIN)/simdex similarity king queen > /dev/null 2>&1 || $(BIN)/simdex ingest
	$(BIN)/simdex analogy man king woman -k 3
	$(BIN)/simdex neighbors frog
	$(BIN)/simdex neighbors "king - man + woman" -k 5

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	cd benchmarks && for script in bench_*.py; do ../$(BIN)/python $$script || exit 1; done

# the tests against the lowest declared versions (floors.txt), in a venv of their own
floors:
	$(PYTHON) -m venv .venv-floors
	.venv-floors/bin/pip install --quiet -c constraints.txt -c floors.txt -e '.[dev]' $$(grep -v '^#' floors.txt)
	.venv-floors/bin/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) .venv-floors *.egg-info .pytest_cache
