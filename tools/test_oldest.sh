#!/usr/bin/env bash
# The oldest stage of `make test`: the library on the oldest versions it supports.
#
# Builds (once; rebuilt when requirements-oldest.txt changes) a venv of Python 3.11, the floor
# of requires-python, holding the lower bounds that pyproject.toml declares (numpy, pandas,
# matplotlib), Colab's widget stack (ipywidgets 7.7.1, IPython 7.34) and torch 2.13.0, from
# PyPI and the pip cache. In it, with the checkout's monosem_lib (PYTHONPATH), it runs
#   1. every test marked `oldest`: the store's round trips (a run, a summary, an SAE and its
#      study batches, a merge of shards, --resume), the CLI's bad-input tests, what stored
#      .npz files hold, and the property tests;
#   2. one chapter that trains, against an empty run cache, which must then hold runs that
#      load (tools/run_chapter.py).
# Prints the time of each part. Environment: PYTHON_OLDEST (default python3.11),
# OLDEST_VENV (default .venv-oldest), OLDEST_CHAPTER (default book/01_superposition.ipynb).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON_OLDEST=${PYTHON_OLDEST:-python3.11}
VENV=${OLDEST_VENV:-.venv-oldest}
CHAPTER=${OLDEST_CHAPTER:-book/01_superposition.ipynb}
PINS=requirements-oldest.txt
PY=$VENV/bin/python
start=$SECONDS

pins() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$PINS"; }  # the pins, comments apart
if [ "$(pins)" != "$(cat "$VENV/.installed" 2>/dev/null)" ]; then
  if ! command -v "$PYTHON_OLDEST" >/dev/null; then
    echo "test-oldest: $PYTHON_OLDEST not found; the oldest stage needs Python 3.11 (set PYTHON_OLDEST)" >&2
    exit 1
  fi
  echo "test-oldest: building $VENV from $PINS (log: $VENV/pip.log)"
  rm -rf "$VENV"
  "$PYTHON_OLDEST" -m venv "$VENV"
  { "$PY" -m pip install -q --upgrade pip && "$PY" -m pip install -q -r "$PINS"; } \
    > "$VENV/pip.log" 2>&1 || { tail -40 "$VENV/pip.log"; exit 1; }
  pins > "$VENV/.installed"
fi
"$PY" - <<'PYEOF'
import sys, numpy, pandas, matplotlib, torch, ipywidgets, IPython
print("test-oldest: Python", sys.version.split()[0], "| numpy", numpy.__version__,
      "| pandas", pandas.__version__, "| matplotlib", matplotlib.__version__,
      "| torch", torch.__version__, "| ipywidgets", ipywidgets.__version__,
      "| IPython", IPython.__version__)
PYEOF
built=$SECONDS

export PYTHONPATH=$PWD MONOSEM_QUIET=1 PYDEVD_DISABLE_FILE_VALIDATION=1
export MONOSEM_CACHE_DIR=$PWD/_build/oldest-cache
"$PY" -m pytest tests -m oldest -q -p no:cacheprovider -W "ignore::DeprecationWarning"
tested=$SECONDS
"$PY" tools/run_chapter.py "$CHAPTER"
echo "test-oldest: venv $((built - start)) s, tests $((tested - built)) s," \
  "chapter $((SECONDS - tested)) s, total $((SECONDS - start)) s"
