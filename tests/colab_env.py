"""A Colab-like Python environment for the slow tests, built once and kept in ``_build``.

Colab's widget stack (what ``pip list`` shows in a Colab runtime: ipywidgets 7.7.1, ipykernel
6.17, IPython 7.34) with this project's pins for the rest of what Colab preinstalls (torch
from this machine's wheels, numpy, matplotlib, tqdm, pandas). ``monosem_lib`` itself is not in
it: ``tests/test_colab_widgets.py`` imports it from the checkout (``PYTHONPATH``) and
``tests/test_colab_chapters.py`` installs it the way a chapter's install cell does. The
environment is rebuilt when the pins change.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "_build" / "colab-venv"
COLAB_PINS = ["ipywidgets==7.7.1", "ipykernel==6.17.1", "ipython==7.34.0"]
PREINSTALLED = ("torch", "numpy", "matplotlib", "tqdm", "pandas")


def project_pins(wanted: tuple[str, ...] = PREINSTALLED) -> list[str]:
    """The pins of ``requirements.txt`` for the packages ``wanted``."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.split("==")[0].strip() in wanted]


def colab_python(venv: Path = VENV) -> Path:
    """The Python of the Colab-like environment at ``venv``, built or rebuilt if its pins
    changed."""
    pins = COLAB_PINS + project_pins()
    python = venv / "bin" / "python"
    stamp = venv / ".pins"
    if not (python.exists() and stamp.exists() and stamp.read_text() == "\n".join(pins)):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        proc = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *pins], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        stamp.write_text("\n".join(pins))
    return python
