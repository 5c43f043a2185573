# Engineering Monosemanticity: the book and its library.
#   make book   build the rendered book into _build/html (creates .venv if missing)
#   make test   run every test (creates .venv if missing)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test test-fast bench constraints clean

venv: $(STAMP)

# torch==2.13.0 installs the CPU build from this machine's disk; never an unpinned torch.
$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned environment into $(VENV) (log: $(VENV)/pip.log)"
	@{ $(PY) -m pip install -q --upgrade pip && \
	   $(PY) -m pip install -q -r requirements.txt -c constraints.txt && \
	   $(PY) -m pip install -q --no-deps -e . ; } > $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	$(PY) -c "import torch, monosem_lib, jupyter_book" && touch $@

test: venv
	MONOSEM_QUIET=1 $(PY) -m pytest tests

# Everything but the minutes-long science tests, for quick iterations.
test-fast: venv
	MONOSEM_QUIET=1 $(PY) -m pytest tests -m "not science"

bench: venv
	$(PY) -m monosem_lib bench

constraints: venv
	{ echo "# Every package of the test environment, pinned (pip freeze), for reproducible CI."; \
	  echo "# Regenerate with: make constraints"; \
	  $(PY) -m pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > constraints.txt

clean:
	rm -rf _build .pytest_cache
