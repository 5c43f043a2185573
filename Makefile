# Engineering Monosemanticity: the book and its library.
#   make book   build the rendered book into _build/html (creates .venv if missing)
#   make test   lint and type check, then run every test (creates .venv if missing)
# Both need Debian's chromium for the browser test (.ci/run installs it).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv lint test test-fast test-oldest book build data data-grid data-paper data-paper-cpu data-paper-gpu data-decay-study data-sae data-sae-frontier data-sae-frontier-paper data-sae-frontier-paper-gpu bench constraints clean

venv: $(STAMP)

# torch==2.13.0 installs the CPU build from this machine's disk; never an unpinned torch.
$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned environment into $(VENV) (log: $(VENV)/pip.log)"
	@{ $(PY) -m pip install -q --upgrade pip && \
	   $(PY) -m pip install -q -r requirements.txt -c constraints.txt && \
	   $(PY) -m pip install -q --no-deps -e . ; } > $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	$(PY) -c "import torch, monosem_lib, jupyter_book" && touch $@

# Runs share one result cache, so a model trained by one notebook execution is loaded by
# the next (keyed by config and library code: a code change retrains).
RUN_ENV := MONOSEM_QUIET=1 MONOSEM_CACHE_DIR=$(CURDIR)/_build/monosem-cache

# Unit and science tests, the oldest stage, every chapter under nbval (timed), the strict
# build (which reuses the cached runs), then the built site in a real browser.
test: venv lint
	$(RUN_ENV) $(PY) -m pytest tests -m "not browser"
	$(MAKE) --no-print-directory test-oldest
	$(RUN_ENV) $(PY) -m pytest --nbval-lax book -p no:cacheprovider
	$(MAKE) --no-print-directory build
	$(RUN_ENV) MONOSEM_REQUIRE_BUILD=1 $(PY) -m pytest tests -m browser

# The oldest supported versions (requirements-oldest.txt: Python 3.11, numpy 1.23.2, pandas 2.1,
# matplotlib 3.9, Colab's ipywidgets 7.7.1 and IPython 7.34, torch 2.13.0) in .venv-oldest,
# built once from PyPI and the pip cache (about a minute) and rebuilt when the pins change: the
# tests marked `oldest` and one chapter that trains and caches, each part timed (a few minutes).
PYTHON_OLDEST ?= python3.11
test-oldest:
	PYTHON_OLDEST=$(PYTHON_OLDEST) tools/test_oldest.sh

# Lint, format and type check (rules in pyproject.toml; ruff and mypy are pinned in
# requirements.txt). mypy checks the library, the packages pyproject.toml names.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Everything but the minutes-long science tests and notebooks, for quick iterations.
test-fast: venv
	$(RUN_ENV) $(PY) -m pytest tests -m "not science and not browser and not slow"

book: venv build

# Warnings are errors: a notebook that raises, a broken reference or a missing citation fails.
build:
	$(RUN_ENV) $(VENV)/bin/jupyter-book build . -W -n --keep-going

# Stored sweep summaries (data/README.md): every batch of Table 1 at book scale, one file per
# batch. Resumable: a batch whose summary holds the same configs from the same code is skipped.
# The chapters' batches first, with three seeds; the 11-point sweeps (B, E, G1's 33 points)
# and D1 with one.
DATA_3SEEDS := LR1 LR3 K0 K1 LR5 LR2 LR4 K2 RP1 RG1
DATA_1SEED := B1 B2 B3 B4 B5 E1 E2 E3 E4 G1 D1
data: venv
	for b in $(DATA_3SEEDS); do echo "$$b"; \
	  $(RUN_ENV) $(PY) -m monosem_lib sweep $$b --preset book --seeds 3 --summary data/book --resume --representative 12 || exit 1; done
	for b in $(DATA_1SEED); do echo "$$b"; \
	  $(RUN_ENV) $(PY) -m monosem_lib sweep $$b --preset book --seeds 1 --summary data/book --resume || exit 1; done

# The paper's shape (N=512, m=64, k=1024, eps=1/64) at a CPU budget: the paper-cpu preset,
# batch 1024 for 2^12 steps (1/256 of the paper's samples), each row's decay set by the rule
# `ml.decay_for`. About 100 min on 2 idle cores, one file per batch (per-neuron tables, not
# activations: --compact), resumable like `data`: the main batches first, LR3 with the paper's
# own decay coefficient and with the book's earlier rule (total shrink kept, 32 times the
# paper's) at two rates, then the budget study: LR1 and LR3 at two rates for 2^20, 2^21 and
# 2^23 samples (2^22 is the main batches themselves), and at lr 0.01 for 2^24 (two seeds,
# about 6 min a model).
CPU_SWEEP = $(RUN_ENV) $(PY) -m monosem_lib sweep --compact
CPU_DIR := data/paper-cpu
STUDY_RATES := 0.003,0.01
data-paper-cpu: venv
	$(CPU_SWEEP) LR1 --preset paper-cpu --summary $(CPU_DIR) --resume
	$(CPU_SWEEP) LR3 --preset paper-cpu --summary $(CPU_DIR) --resume --representative 4
	$(CPU_SWEEP) K1 --preset paper-cpu --values 256,512,1024,2048 --summary $(CPU_DIR) --resume
	$(CPU_SWEEP) K0 --preset paper-cpu --values 256,512,1024,2048 --summary $(CPU_DIR) --resume
	$(CPU_SWEEP) LR5 --preset paper-cpu --values 0.003,0.01,0.03 --summary $(CPU_DIR) --resume
	$(CPU_SWEEP) LR3 --preset paper-cpu --values 0.01,0.03 --bias-decay 0.03 \
	  --summary $(CPU_DIR)/paper-decay --resume --representative 1
	$(CPU_SWEEP) LR3 --preset paper-cpu --values 0.01,0.03 --bias-decay 0.96 \
	  --summary $(CPU_DIR)/shrink-kept --resume
	for s in 1024 2048; do for b in LR1 LR3; do \
	  $(CPU_SWEEP) $$b --preset paper-cpu --steps $$s --seeds 2 --values $(STUDY_RATES) \
	    --summary $(CPU_DIR)/budget/steps-$$s --resume || exit 1; done; done
	for b in LR1 LR3; do \
	  $(CPU_SWEEP) $$b --preset paper-cpu --steps 8192 --values $(STUDY_RATES) \
	    --summary $(CPU_DIR)/budget/steps-8192 --resume || exit 1; done
	for b in LR1 LR3; do \
	  $(CPU_SWEEP) $$b --preset paper-cpu --steps 16384 --seeds 2 --values 0.01 \
	    --summary $(CPU_DIR)/budget/steps-16384 --resume || exit 1; done

# The SAE chapter's study (data/sae/<scale>/, one file per batch, metrics and small arrays
# only, a few MB): book scale (toy models, SAEs on x and h at 2N latents over a 3 x 3 grid of
# m and eps, the slider's SAEs), then the paper's shape at the paper-cpu budget. Resumable: a
# batch whose stored spec matches is skipped. The toy models go through the result cache.
SAE_STUDY = $(RUN_ENV) $(PY) -m monosem_lib.paper.sae_study --out data/sae
data-sae: venv
	$(SAE_STUDY) --shape book
	$(SAE_STUDY) --shape paper-cpu

# The fair fight's frontier study (issue 29; monosem_lib/paper/sae_frontier.py), one pair of
# files per cell under data/sae-frontier/book, written atomically, resumable cell by cell
# (FRONTIER_ARGS="--limit n" stops after n cells): the baseline, the engineered model at the
# rule's decay times 0.5, 1, 2, and TopK and ReLU SAEs on x and on h of both models over
# grids of three, at 2^18 ... 2^21 samples, three seeds, three regimes (252 cells). Then what
# the stored cells show, each contender chosen by the knee of loss against L0 and by the oracle.
# One thread (OMP_NUM_THREADS=1), as the stored bill was measured.
FRONTIER = $(RUN_ENV) OMP_NUM_THREADS=1 $(PY) -m monosem_lib sae-frontier
data-sae-frontier: venv
	$(FRONTIER) book --out data/sae-frontier $(FRONTIER_ARGS)
	$(FRONTIER) book --out data/sae-frontier --report
	$(FRONTIER) book-rates --out data/sae-frontier $(FRONTIER_ARGS)

# The paper's shape (N = 512, m = 64, k = 1024, lr 0.01 with the rule's decay): 63 cells at
# 2^21, 2^22 and 2^23 samples, about 6,300 TFLOP (about a day on two CPU cores at the rate
# measured here; far less on a GPU). The 2^22-sample cells chapter 8 reads come first,
# then the rest; resumable as above.
PAPER_FRONTIER = $(RUN_ENV) OMP_NUM_THREADS=2 $(PY) -m monosem_lib sae-frontier paper-cpu --out data/sae-frontier
data-sae-frontier-paper: venv
	$(PAPER_FRONTIER) --samples 4194304 $(FRONTIER_ARGS)
	$(PAPER_FRONTIER) $(FRONTIER_ARGS)

# The same at the paper's scale, on a GPU (hours; see data/README.md for one batch at a time):
data-paper: venv
	for b in LR1 LR3 K1 LR5; do \
	  $(RUN_ENV) $(PY) -m monosem_lib sweep $$b --preset paper --device cuda --summary data/paper --resume --representative 4 || exit 1; done

# Chapter 3's precomputed slider: initial bias x total shrink at the live preset (45 models,
# about a minute), stored as data/live/bias-grid.
data-grid: venv
	$(RUN_ENV) $(PY) -c "from monosem_lib import book; print(book.store_bias_grid('data/live'))"

# The decay study (how to set bias decay for a run length, rate and schedule; issue 27), one
# file per cell under data/decay-study, written atomically, resumable cell by cell (a rerun
# trains only what is missing; `--limit n` stops after n cells). Book scale: T = 1000 ... 16000
# under three schedules at lr 0.01 on a sqrt(2) grid of total shrinks (1.06 ... 34) at three
# seeds, the rate's share at T = 8000 (lr 0.003 ... 0.03), and the periodic cosine with decay
# that follows the rate: 1,335 models, 8.0 M model-steps, 3.6 CPU hours measured on one thread
# of a shared machine (sae_frontier_report.decay_study_bill). The paper's
# shape (batch 1024, periodic cosine, T = 2048 ... 8192, S 1.5 ... 12, two seeds, one file per
# model): about 11 CPU hours at lr 0.01 and 12 more at 0.03. What the stored cells show:
# `python -m monosem_lib decay-study book --report`.
data-decay-study: venv
	$(RUN_ENV) $(PY) -m monosem_lib decay-study book --data data
	$(RUN_ENV) $(PY) -m monosem_lib decay-study paper-cpu --data data
	$(RUN_ENV) $(PY) -m monosem_lib decay-study book --data data --report

# The paper's full budget (batch 8192 for 2^17 steps) on one data-center GPU: the models of LR1
# and LR3 that fit in 8 minutes, planned from the device's measured step time (the plan is
# stored in data/paper/gpu-plan.json and reused, so a rerun resumes). TF32 matmuls.
data-paper-gpu: venv
	$(RUN_ENV) $(PY) -m monosem_lib paper-gpu --device cuda --tf32 --budget-seconds 480 --summary data/paper

# The paper-shape SAE frontier (above) on a GPU, in FP32, as much as fits in
# GPU_FRONTIER_SECONDS (default 240: a second call after data-paper-gpu in a 15-minute device
# session). The 2^22-sample cells first, then 2^21, then 2^23; resumable, a cell a file, each
# recording the device it ran on.
GPU_FRONTIER_SECONDS ?= 240
data-sae-frontier-paper-gpu: venv
	$(RUN_ENV) $(PY) -m monosem_lib sae-frontier paper-cpu --out data/sae-frontier --device cuda \
	  --samples 4194304 --samples 2097152 --samples 8388608 --budget-seconds $(GPU_FRONTIER_SECONDS)

bench: venv
	$(PY) -m monosem_lib bench

constraints: venv
	{ echo "# Every package of the test environment, pinned (pip freeze), for reproducible CI."; \
	  echo "# Regenerate with: make constraints"; \
	  $(PY) -m pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > constraints.txt

clean:
	rm -rf _build .pytest_cache
