# Two commands do all the set-up: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast ui clean browser bench

# The venv is rebuilt when the pins change. torch stays at exactly 2.13.0
# (constraints.txt): the CPU wheel on local disk; any other version is a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt "torch==2.13.0"
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/forecast quickstart

# The MLflow UI test drives Debian's Chromium (STACK.md); tools that download
# their own browser cannot work offline.
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: install browser
	$(BIN)/python -m pytest

# Everything but the tests marked slow (training a model, starting a server): seconds, not minutes.
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

# Benchmarks against the peers (benchmarks/README.md): the `bench` extra (Darts,
# NeuralForecast, py-spy) goes in with the same torch pin, so no other torch is
# pulled; then the quick mode writes docs/benchmarks.md. `make bench BENCH_ARGS=--full`
# runs the standard task (under an hour on 2 cores).
BENCH_ARGS ?= --quick
bench: install
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt "torch==2.13.0" -e ".[bench]"
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath $(or $(FORECASTING_HOME),.forecasting))/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf .forecasting
