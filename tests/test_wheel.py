"""The Colab path: a built wheel installs beside an existing torch and leaves it alone."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )
    return proc.stdout


def test_wheel_installs_into_an_environment_with_torch_without_touching_it(tmp_path):
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ]
    )
    wheel = next((tmp_path / "dist").glob("monosem_lib-*.whl"))
    env = tmp_path / "env"
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(env)])
    py = env / "bin" / "python"
    _run(
        [py, "-m", "pip", "install", "-q", "torch==2.13.0"]
    )  # stands in for Colab's preinstalled torch
    probe = (
        "import json, os, torch; "
        "print(json.dumps([torch.__version__, torch.__file__, "
        "os.stat(torch.__file__).st_mtime_ns]))"
    )
    before = json.loads(_run([py, "-c", probe]))
    log = _run([py, "-m", "pip", "install", str(wheel)])
    after = json.loads(_run([py, "-c", probe]))
    assert after == before, f"installing monosem_lib changed torch: {before} -> {after}"
    assert "Uninstalling torch" not in log and "Successfully installed" in log
    check = (
        "import monosem_lib as ml; run = ml.train(ml.preset('tiny', steps=100)); "
        "row = ml.summarize(run)[0]; assert row['final_loss'] < row['zero_loss']; "
        "print(row['final_loss'])"
    )
    _run([py, "-c", check])
    meta = _run([py, "-m", "pip", "show", "monosem_lib"])
    assert "Requires: matplotlib, numpy, torch, tqdm" in meta, (
        "the library's own dependencies stay minimal and unpinned"
    )
