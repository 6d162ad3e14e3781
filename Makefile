# Two commands do all the set-up: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test ui clean browser

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

ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath $(or $(FORECASTING_HOME),.forecasting))/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf .forecasting
