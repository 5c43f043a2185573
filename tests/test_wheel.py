"""The Colab path: a built wheel installs beside an existing torch and leaves it alone, needs
only torch and numpy, and carries the stored data the chapters read."""

import json
import re
import subprocess
import sys
import zipfile
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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from this checkout, as pip builds it from a clone of the repository."""
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)])
    return next(dist.glob("monosem_lib-*.whl"))


def test_wheel_installs_into_an_environment_with_torch_without_touching_it(wheel, tmp_path):
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
    assert "Requires: numpy, torch" in meta, "the core's dependencies stay minimal"
    probe = (
        "import importlib.metadata as m; print(m.metadata('monosem_lib').get_all('Requires-Dist'))"
    )
    requires = _run([py, "-c", probe])
    for name in ("pandas", "matplotlib", "ipywidgets", "ipython", "tqdm"):
        assert re.search(rf"'{name}(>=[0-9.]+)?; extra == \"book\"'", requires), (
            f"the [book] extra installs {name}, with a lower bound at most: {requires}"
        )


def test_the_wheel_ships_the_stored_data(wheel):
    """What the chapters read travels in the wheel (monosem_lib/stored_data), file for file."""
    with zipfile.ZipFile(wheel) as z:
        shipped = {
            n.split("/stored_data/", 1)[1]: z.getinfo(n).file_size
            for n in z.namelist()
            if n.startswith("monosem_lib/stored_data/")
        }
    data = ROOT / "data"
    on_disk = {
        p.relative_to(data).as_posix(): p.stat().st_size for p in data.rglob("*") if p.is_file()
    }
    assert shipped == on_disk
    print(
        f"wheel {wheel.stat().st_size / 2**20:.1f} MB, data {sum(on_disk.values()) / 2**20:.1f} MB"
    )
