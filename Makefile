# `make demo`: set up, then ingest the packaged GloVe 6B 50d and ask it a few questions.
# `make test`: set up, lint (ruff), then run the tests (what .ci/run does).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench floors clean browser

setup: $(VENV)/.installed browser

# the explorer's browser test needs Debian's chromium and chromedriver: installed when missing and
# this is root on Debian (CI); elsewhere the test skips and says why
browser:
	@if ! command -v chromium > /dev/null || ! command -v chromedriver > /dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
			echo "installing chromium and chromium-driver (Debian) for the browser test"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null) \
				|| echo "warning: could not install chromium; the browser test will skip (or fail on CI)" >&2; \
		else \
			echo "note: no chromium/chromedriver and not root on Debian: the browser test will skip" >&2; \
		fi; \
	fi

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

test: setup lint
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

bench: setup
	cd benchmarks && for script in bench_*.py; do ../$(BIN)/python $$script || exit 1; done

# the tests against the lowest declared versions (floors.txt), in a venv of their own
floors:
	$(PYTHON) -m venv .venv-floors
	.venv-floors/bin/pip install --quiet -c constraints.txt -c floors.txt -e '.[dev]' $$(grep -v '^#' floors.txt)
	.venv-floors/bin/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) .venv-floors *.egg-info .pytest_cache
