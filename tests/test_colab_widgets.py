"""The live widgets under Colab's widget stack (ipywidgets 7.7.1, ipykernel 6, IPython 7).

Builds a virtual environment with those versions and the project's torch (``torch==2.13.0``,
from this machine's wheels), starts a real kernel in it with jupyter_client and drives the
widgets the way a browser's widget manager does (``tests/colab_kernel_driver.py``): images
must arrive as PNG bytes in a fresh kernel, a moved slider must retrain with partial redraws,
a move during a retrain must win, and the inspector's picker must name classes. The
environment is ``tests/colab_env.py``'s, kept in ``_build/colab-venv``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from colab_env import colab_python  # tests/ is on sys.path under pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_live_widgets_under_colabs_ipywidgets_7(tmp_path):
    python = colab_python()
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        MONOSEM_QUIET="1",
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env.pop("JUPYTER_PATH", None)
    proc = subprocess.run(
        [str(python), "-Xfrozen_modules=off", str(ROOT / "tests" / "colab_kernel_driver.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["versions"][:2] == ["7.7.1", "6.17.1"], out["versions"]
    assert not out["errors"], out["errors"]
    assert out["initial"]["images"] == 1 and out["initial"]["png"] == [True], (
        "a fresh kernel must get a PNG image"
    )
    assert out["initial"]["sliders"] == ["initial bias", "lr", "shrink S"]
    assert out["retrain_done"], out["final_status"]
    assert out["image_updates"] >= 4, "the untrained preview, partial redraws and the final image"
    assert out["image_changed"] and out["final_png"]
    assert "initial bias -1.00" in out["final_status"] and "trained live" in out["final_status"]
    assert (
        "initial bias +0.00, shrink S 5 " in out["restart_status"]
        and "trained live" in out["restart_status"]
    )
    assert out["images_all"] == [True, True, True]
    assert all(": " in label for label in out["neuron_labels"])
    assert "neuron 3 (" in out["inspector_status"] and "ablated" in out["inspector_status"]
    assert out["figure_text"] == [], "a figure was displayed as text"
