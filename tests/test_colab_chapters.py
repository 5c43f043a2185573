"""Every chapter the way a Colab reader runs it: alone, installed by its own install cell.

A snapshot of the working tree (the files git tracks or does not ignore, committed in a
temporary repository) stands in for the book's repository on GitHub. For each chapter:

- the Colab-like environment of ``tests/colab_env.py`` (Colab's widget stack, torch, numpy,
  matplotlib, tqdm, pandas), without ``monosem_lib``;
- the chapter copied alone into an empty directory, with a fresh ``HOME`` (no run cache, no
  pip cache) and two threads (a Colab CPU runtime has two cores);
- its install cell active (an IPython startup file registers a stand-in ``google.colab``
  module) and pointed at the snapshot, ``git+file://`` instead of GitHub, so pip clones it,
  builds the wheel (``setup.py`` ships ``data/`` in it) and installs ``monosem_lib[book]``;
- the chapter executed by nbclient; every cell must pass, and torch must be left untouched.

Each chapter's wall time (the install cell apart) is printed and written to
``_build/colab-times.json``; one over ``MONOSEM_NOTEBOOK_HARD_LIMIT`` seconds (default 150,
as for ``pytest --nbval-lax book``) fails.

Which chapters: ``MONOSEM_COLAB_CHAPTERS``, notebook names (``09_table1``) separated by commas,
or ``all``. By default the appendix alone, which reads every stored batch and trains nothing:
``make test`` runs that on every push, and the Pages workflow runs every chapter on a schedule
(``.github/workflows/book.yml``). A last test runs the appendix with its data unreachable: it
must stop with ``DataUnavailable``'s one sentence, not a traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from colab_env import colab_python  # tests/ is on sys.path under pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import booktools  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHAPTERS = "09_table1"
TIMES = ROOT / "_build" / "colab-times.json"
STARTUP = (
    'import sys, types\nsys.modules.setdefault("google.colab", types.ModuleType("google.colab"))\n'
)
# Appended to each chapter: the kernel's CPU seconds, which a busy machine inflates far less
# than wall time (with one thread, about the work itself).
CPU_CELL = (
    "import json as _json, resource as _resource\n"
    "_usage = _resource.getrusage(_resource.RUSAGE_SELF)\n"
    "print(_json.dumps({'kernel_cpu_s': round(_usage.ru_utime + _usage.ru_stime, 1)}))"
)
ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")  # a MyST role, as {glue:text}`name`
DROPPED_ENV = ("PYTHONPATH", "PYTEST_CURRENT_TEST", "JUPYTER_PATH", "VIRTUAL_ENV")


def _chapters() -> list[Path]:
    every = booktools.chapters(ROOT)
    wanted = os.environ.get("MONOSEM_COLAB_CHAPTERS", DEFAULT_CHAPTERS).strip()
    if wanted == "all":
        return every
    names = {n.strip() for n in wanted.split(",") if n.strip()}
    chosen = [nb for nb in every if nb.stem in names]
    assert len(chosen) == len(names), f"MONOSEM_COLAB_CHAPTERS={wanted!r}: no such chapter"
    return chosen


def _run(cmd, **kw) -> str:
    """Run ``cmd`` outside the checkout (no PYTHONPATH); its stdout. Fails on an error."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, **kw)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    """A git repository holding the working tree as it is, committed on the book's branch."""
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
    )
    if listing.returncode != 0:
        pytest.skip(f"not a git checkout ({listing.stderr.strip()}): no snapshot to install")
    repo = tmp_path_factory.mktemp("repository")
    for rel in sorted(set(filter(None, listing.stdout.split("\0")))):
        if (ROOT / rel).is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, repo / rel)
    branch = booktools.repository(ROOT)[2]
    git = ["git", "-C", repo, "-c", "user.name=test", "-c", "user.email=test@localhost"]
    _run(git + ["init", "-q", "-b", branch])
    _run(git + ["add", "-A"])
    _run(git + ["commit", "-q", "-m", "snapshot of the working tree"])
    return repo


@pytest.fixture(scope="module")
def python() -> Path:
    return colab_python()


def _torch_state(python: Path) -> list:
    probe = (
        "import json, os, torch; "
        "print(json.dumps([torch.__version__, os.stat(torch.__file__).st_mtime_ns]))"
    )
    return json.loads(_run([python, "-c", probe]))


def _kernel_manager(python: Path, home: Path) -> KernelManager:
    """A kernel manager that starts ``python``'s ipykernel (a kernelspec under ``home``)."""
    spec_dir = home / "kernelspecs" / "colab"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like Python 3",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)])
    return KernelManager(kernel_name="colab", kernel_spec_manager=specs)


def _kernel_env(home: Path, colab: bool, **extra: str) -> dict[str, str]:
    """The kernel's environment: this one less the checkout's and the test runner's traces,
    a fresh HOME, two threads, and the stand-in ``google.colab`` when ``colab``."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env = {k: v for k, v in env.items() if not k.startswith(("MONOSEM_", "JUPYTER_"))}
    ipython = home / ".ipython"
    startup = ipython / "profile_default" / "startup"
    startup.mkdir(parents=True)
    if colab:
        (startup / "00-google-colab.py").write_text(STARTUP)
    threads = os.environ.get("MONOSEM_COLAB_THREADS", "2")
    env.update(HOME=str(home), IPYTHONDIR=str(ipython), OMP_NUM_THREADS=threads)
    env.update(JUPYTER_RUNTIME_DIR=str(home / "runtime"), PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.update(extra)
    return env


def _point_install_cell(nb, snapshot: Path) -> None:
    """Make the chapter's install cell install from ``snapshot`` instead of GitHub."""
    url, _, branch = booktools.repository(ROOT)
    source = nb.cells[booktools.SETUP_INDEX].source
    assert source.strip() == booktools.install_source(ROOT), "not the install cell"
    github = f"git+{url}@{branch}"
    assert github in source and '"monosem_lib[book] @ ' in source, source
    # file://localhost/...: the pip of Python 3.11's venv (23.2) rejects an empty host.
    nb.cells[booktools.SETUP_INDEX].source = source.replace(
        github, f"git+file://localhost{snapshot}@{branch}"
    )


def _execute(nb, workdir: Path, python: Path, env: dict[str, str]) -> list[float]:
    """Run every cell of ``nb`` in ``workdir``; the wall time of each cell."""
    client = NotebookClient(
        nb,
        km=_kernel_manager(python, Path(env["HOME"])),
        timeout=900,
        resources={"metadata": {"path": str(workdir)}},
    )
    times: list[float] = []
    execute_cell = client.async_execute_cell

    async def timed(cell, index, **kw):
        start = time.perf_counter()
        try:
            return await execute_cell(cell, index, **kw)
        finally:
            times.append(time.perf_counter() - start)

    client.async_execute_cell = timed
    client.execute(env=env)
    return times


def _record(name: str, row: dict) -> None:
    TIMES.parent.mkdir(exist_ok=True)
    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    times[name] = row
    TIMES.write_text(json.dumps(times, indent=1))


@pytest.mark.parametrize("notebook", _chapters(), ids=lambda p: p.stem)
def test_chapter_runs_alone_from_its_install_cell(notebook, snapshot, python, tmp_path):
    _run([python, "-m", "pip", "uninstall", "-y", "-q", "monosem_lib"])
    torch_before = _torch_state(python)
    workdir, home = tmp_path / "content", tmp_path / "home"
    workdir.mkdir()
    shutil.copy(notebook, workdir / notebook.name)
    nb = nbformat.read(workdir / notebook.name, as_version=4)
    _point_install_cell(nb, snapshot)
    nb.cells.append(nbformat.v4.new_code_cell(CPU_CELL))
    start = time.perf_counter()
    try:
        cell_times = _execute(nb, workdir, python, _kernel_env(home, colab=True))
    finally:
        installed = "".join(
            o.get("text", "") for o in nb.cells[booktools.SETUP_INDEX].get("outputs", [])
        )
        assert "ERROR" not in installed, f"the install cell failed:\n{installed}"
    wall = time.perf_counter() - start
    install = cell_times[booktools.SETUP_INDEX]  # the install cell, after the title
    row = {"wall_s": round(wall, 1), "install_s": round(install, 1)}
    row["chapter_s"] = round(wall - install, 1)
    row.update(json.loads(nb.cells[-1].outputs[0]["text"]))
    slowest = sorted(range(len(nb.cells) - 1), key=lambda i: -cell_times[i])[:3]
    row["slowest_cells"] = {nb.cells[i].get("id", str(i)): round(cell_times[i], 1) for i in slowest}
    row["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"\n{notebook.stem}: {row['chapter_s']:.1f} s (install cell {install:.1f} s, kernel CPU "
        f"{row['kernel_cpu_s']:.1f} s, load {row['load_average']})"
    )
    _record(notebook.stem, row)
    probe = "import monosem_lib; print(monosem_lib.__file__)"
    location = _run([python, "-c", probe], cwd=workdir)
    assert str(python.parent.parent) in location, f"not the installed library: {location}"
    assert _torch_state(python) == torch_before, "the install cell changed Colab's torch"
    hard = float(os.environ.get("MONOSEM_NOTEBOOK_HARD_LIMIT", "150"))
    assert row["chapter_s"] < hard, f"{notebook.stem} took {row['chapter_s']} s alone"
    # Colab shows Markdown as written: every sentence must carry its numbers, no MyST role,
    # and the chapter's own check must have compared each stated number with the code's.
    roles = [r for c in nb.cells if c.cell_type == "markdown" for r in ROLE.findall(c.source)]
    assert not roles, f"{notebook.stem}: MyST roles Colab would show raw: {roles[:5]}"
    printed = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "stated numbers equal the computed values" in printed, "the prose check did not run"


def test_unreachable_data_ends_in_one_sentence(snapshot, python, tmp_path):
    try:
        _run([python, "-c", "import monosem_lib"], cwd=tmp_path)  # installed by a chapter
    except AssertionError:
        _run(
            [
                python,
                "-m",
                "pip",
                "install",
                "-q",
                f"monosem_lib[book] @ git+file://localhost{snapshot}",
            ]
        )
    notebook = ROOT / "book" / "09_table1.ipynb"
    workdir, home, empty = tmp_path / "content", tmp_path / "home", tmp_path / "nothing"
    workdir.mkdir()
    empty.mkdir()
    nb = nbformat.read(notebook, as_version=4)
    env = _kernel_env(home, colab=False, MONOSEM_DATA_DIR=str(empty))
    with pytest.raises(CellExecutionError) as failed:
        _execute(nb, workdir, python, env)
    assert failed.value.ename == "DataUnavailable", str(failed.value)[-2000:]
    (error,) = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    sentence = error["evalue"]
    print(f"\nwith the data unreachable the appendix says: {error['traceback']}")
    assert error["traceback"] == [f"DataUnavailable: {sentence}"], "one line, no traceback"
    assert sentence.count(". ") == 0 and sentence.endswith("."), f"one sentence: {sentence}"
    for hint in ("install cell", "make data", "MONOSEM_DATA_DIR", str(empty)):
        assert hint in sentence, f"the sentence should mention {hint!r}: {sentence}"
