# Two commands do all the set-up: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast ui clean browser bench gpu-check stack-tools stack-test stack-clean

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

# On a machine with a CUDA device (the device tool's H200): the -m gpu tests, then the standard task
# on CUDA by the default path, window by window and a raw loop, and a ddp_spawn smoke test (in the
# gpu tests), all under a hard 8-minute timeout. GPU_PYTHON: an interpreter that has the project's
# dependencies (default the venv's); the figures go to $$OUT/gpu_check.json (or ./gpu_check.json).
GPU_PYTHON ?= $(BIN)/python
gpu-check:
	timeout -k 10 480 sh -c '$(GPU_PYTHON) -m pytest -m gpu tests/gpu -q -p no:cacheprovider -x && $(GPU_PYTHON) -m benchmarks.gpu_check'

ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath $(or $(FORECASTING_HOME),.forecasting))/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf .forecasting

# The compose stack for real (README, "The compose stack"): a private dockerd, images built from
# Debian (no registry needed), docker-compose.yml up, ingest -> train -> predict through Prefect,
# down -v. Opt-in (root; about 11 minutes on 2 cores, tools included); not part of `make test`.
# STACK_CACHE keeps the debootstrap root file system and the docker-compose venv between runs
# (`make stack-clean` drops them); STACK_WORK holds the daemon's images, containers and volumes
# and is removed at the end; STACK_CACHE/logs keeps the last run's logs.
STACK_CACHE ?= $(HOME)/.cache/forecasting/stack
STACK_WORK  ?= /tmp/forecasting-stack-test
STACK_NICE  ?= nice -n 10

stack-tools:
	docker/stack-tools.sh $(STACK_CACHE) $(PYTHON)

stack-test: install stack-tools
	FORECASTING_STACK_TEST=1 STACK_CACHE=$(STACK_CACHE) STACK_WORK=$(STACK_WORK) \
	  $(STACK_NICE) $(BIN)/python -m pytest tests/stack -v -s -x -p no:cacheprovider --timeout=5400

stack-clean:
	rm -rf $(STACK_CACHE)
