"""Fault injection: stored results survive crashes, concurrency, full disks and damaged files.

Every case asserts two things: nothing the user had is lost, and nothing wrong is used
silently (a damaged, mismatched, newer or non-finite file is refused with its path). Runs use
the ``tiny`` preset or a few book-scale steps; the few cases that need a real second process
(a concurrent writer, a kill) start them in parallel.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from monosem_lib.analysis.report import interpret
from monosem_lib.apps.cli import main
from monosem_lib.core.config import preset
from monosem_lib.core.resources import InsufficientMemory
from monosem_lib.core.training import train
from monosem_lib.paper.reproduction import stale_files
from monosem_lib.store import atomic, files, locks, preflight
from monosem_lib.store.atomic import NewerVersionError, StoredFileError, WriteFailed
from monosem_lib.store.cache import RunCache
from monosem_lib.store.files import load_run, load_summary, write_summary
from monosem_lib.store.summaries import holds_configs, save_run, save_summary
from monosem_lib.version import RESULTS_VERSION

SWEEP = ["sweep", "LR1", "--seeds", "1", "--steps", "20"]
ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, MONOSEM_QUIET="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def run():
    return train(preset("tiny", steps=40, instances=2), progress=False)


def _cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _reseal(json_path: Path, edit) -> None:
    """Edit a stored JSON and seal it again, as a writer with other ideas would have."""
    meta = edit(json.loads(json_path.read_text()))
    role = "weights.npz" if json_path.name == "run.json" else "npz"
    npz = (
        json_path.parent / "weights.npz" if role == "weights.npz" else json_path.with_suffix(".npz")
    )
    json_path.write_text(json.dumps(atomic.seal(meta, {role: npz})))


def _unseal(json_path: Path) -> None:
    """Drop the digests, as in a file written before they existed (data/ holds such files)."""
    meta = json.loads(json_path.read_text())
    meta.pop("integrity", None)
    json_path.write_text(json.dumps(meta))


def _rewrite_npz(path: Path, edit) -> None:
    with np.load(path) as z:
        arrays = dict(z)
    edit(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


# -- 1. concurrent writers ---------------------------------------------------------------------

HOLD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("locks", sys.argv[1])
locks = importlib.util.module_from_spec(spec); spec.loader.exec_module(locks)
with locks.holding(sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_second_writer_is_refused_before_training_naming_the_holder(tmp_path, capsys):
    assert _cli([*SWEEP, "--values", "0.003", "--summary", tmp_path], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, locks.__file__, str(tmp_path / "LR1")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, out, err = _cli(
            [*SWEEP, "--values", "0.03", "--summary", tmp_path, "--overwrite"], capsys
        )
        line = _one_line(err)
        assert code == 2 and out == "" and f"process {holder.pid}" in line and ".LR1.lock" in line
    finally:
        holder.communicate("")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before, "nothing changed"
    code, _, err = _cli([*SWEEP, "--values", "0.03", "--summary", tmp_path, "--overwrite"], capsys)
    assert code == 0, err
    assert [c.lr for c in load_summary(tmp_path / "LR1.json").configs] == [0.03]
    assert not list(tmp_path.glob(".*")), "no lock or temporary file is left"


def test_a_thread_of_the_same_process_is_refused_too(run, tmp_path):
    with locks.holding(tmp_path / "T"):
        save_summary(run, tmp_path, name="T", scale="book")  # the holder may write
        errors = []
        worker = threading.Thread(
            target=lambda: errors.append(
                _catch(save_summary, run, tmp_path, name="T", scale="book")
            )
        )
        worker.start()
        worker.join()
    assert isinstance(errors[0], locks.TargetLocked), errors


def _catch(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - returned for the assertion
        return err
    return None


def test_two_sweeps_racing_into_one_summary_leave_one_whole_pair(tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "monosem_lib", *SWEEP, "--values", values, "--overwrite"]
            + ["--summary", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for values in ("0.003,0.01", "0.03")
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for code, err in outcomes:
        assert code == 0 or (code == 2 and "is being written by" in err), err
    lrs = [c.lr for c in load_summary(tmp_path / "LR1.json").configs]  # verified: one pair
    assert lrs in ([0.003, 0.01], [0.03])
    assert not list(tmp_path.glob(".*")), "no lock or temporary file is left"


# -- 2. a kill between the renames, truncated and flipped files ----------------------------------

KILL = """
import os, sys
from pathlib import Path
from monosem_lib.core.config import preset
from monosem_lib.core.training import train
from monosem_lib.paper.reproduction import stale_files
from monosem_lib.store.summaries import save_run, save_summary

where, target = sys.argv[1], Path(sys.argv[2])
run = train(preset("tiny", steps=20, lr=0.03), progress=False)
real = {"replace": os.replace, "rename": os.rename}
renames = []

def killing(name):
    def move(a, b):
        if name == "rename":
            renames.append(b)
            if len(renames) == 2:  # between moving the old run away and the new one in
                os._exit(137)
        if where == "before" and str(b).endswith(".npz") and not str(b).endswith(".aside"):
            os._exit(137)
        real[name](a, b)
        if where == "after" and str(b).endswith(".npz") and not str(b).endswith(".aside"):
            os._exit(137)
    return move

os.replace, os.rename = killing("replace"), killing("rename")
if where == "run":
    save_run(run, target, overwrite=True)
else:
    save_summary(run, target, name="LR1", scale="book", overwrite=True)
"""


def test_a_kill_mid_write_keeps_the_old_result_whole(run, tmp_path):
    targets = {w: tmp_path / w for w in ("before", "after", "run")}
    for where, target in targets.items():
        if where == "run":
            save_run(run, target)
        else:
            save_summary(run, target, name="LR1", scale="book")
    procs = [
        subprocess.Popen([sys.executable, "-c", KILL, w, str(t)], env=ENV, stderr=subprocess.PIPE)
        for w, t in targets.items()
    ]
    assert [p.wait(timeout=300) for p in procs] == [137] * 3, [p.stderr.read() for p in procs]
    for where in ("before", "after"):
        back = load_summary(targets[where] / "LR1.json")  # the old pair, restored and verified
        assert [c.lr for c in back.configs] == [c.lr for c in run.configs], where
        assert holds_configs(targets[where] / "LR1.json", run.configs)
        assert sorted(p.name for p in targets[where].iterdir()) == ["LR1.json", "LR1.npz"]
    assert not targets["run"].exists(), "the kill left the run directory moved away"
    with pytest.warns(UserWarning, match="restored the run"):
        back = load_run(targets["run"])
    torch.testing.assert_close(back.model.flat, run.model.flat)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["after", "before", "run"]
    assert targets["run"].stat().st_mode & 0o777 != 0o700, "run directories get the umask's mode"


def _damage(kind: str, folder: Path, run) -> Path:
    """A summary damaged one way; returns its JSON."""
    path = save_summary(run, folder, name="LR1", scale="book")
    npz = path.with_suffix(".npz")
    data = bytearray(npz.read_bytes())
    if kind == "truncated":
        npz.write_bytes(bytes(data[: len(data) // 2]))
    elif kind in ("flipped", "flipped, no digests"):
        data[len(data) // 2] ^= 0xFF
        npz.write_bytes(bytes(data))
    elif kind == "edited JSON":
        meta = json.loads(path.read_text())
        meta["instances"][0]["metrics"]["mono_neurons"] += 1
        path.write_text(json.dumps(meta))
    elif kind in ("swapped npz", "compact npz beside full JSON, no digests"):
        other = save_summary(
            run.select([1, 0]), folder / "o", name="LR1", scale="book", compact="compact" in kind
        )
        npz.write_bytes(other.with_suffix(".npz").read_bytes())
    if "no digests" in kind:
        _unseal(path)
    return path


@pytest.mark.parametrize(
    "kind,says",
    [
        ("truncated", "does not match"),
        ("flipped", "does not match"),
        ("edited JSON", "does not match its digest"),
        ("swapped npz", "does not match"),
        ("flipped, no digests", "damaged"),
        ("compact npz beside full JSON, no digests", "lacks sfa_000"),
    ],
)
def test_damaged_or_mismatched_summaries_are_refused_with_their_path(kind, says, run, tmp_path):
    path = _damage(kind, tmp_path, run)
    with pytest.raises(StoredFileError, match=says) as err:
        load_summary(path)
    assert str(tmp_path) in str(err.value)
    assert not holds_configs(path, run.configs), "--resume retrains it"


@pytest.mark.oldest
def test_resume_retrains_a_summary_that_fails_verification(tmp_path, capsys):
    assert _cli([*SWEEP, "--values", "0.003", "--summary", tmp_path], capsys)[0] == 0
    npz = tmp_path / "LR1.npz"
    npz.write_bytes(npz.read_bytes()[:-100])
    code, out, err = _cli([*SWEEP, "--values", "0.003", "--summary", tmp_path, "--resume"], capsys)
    assert code == 0 and "skipped" not in out and "retraining" in err and "LR1.npz" in err
    assert [c.lr for c in load_summary(tmp_path / "LR1.json").configs] == [0.003]


# -- 3. full and read-only disks ---------------------------------------------------------------


def test_no_room_or_no_permission_is_found_before_training(tmp_path, capsys, monkeypatch):
    free = {"bytes": 10_000}
    real_usage = preflight.shutil.disk_usage
    monkeypatch.setattr(
        preflight.shutil,
        "disk_usage",
        lambda p: real_usage(p)._replace(free=free["bytes"]),
    )
    for args in (
        ["train", "--preset", "tiny", "--out", tmp_path / "r"],
        [*SWEEP, "--values", "0.003", "--summary", tmp_path / "s"],
    ):
        code, out, err = _cli(args, capsys)
        line = _one_line(err)
        assert code == 2 and out == "" and "free" in line and str(tmp_path) in line
    free["bytes"] = 10**12
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)

    def refuse(directory):  # root ignores permission bits: say what a read-only disk says
        if Path(directory).resolve() == ro.resolve():
            raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(preflight, "probe_write", refuse)
    code, out, err = _cli(["train", "--preset", "tiny", "--out", ro / "r"], capsys)
    assert code == 2 and out == "" and "Read-only" in _one_line(err) and str(ro) in err
    assert list(tmp_path.iterdir()) == [ro] and not list(ro.iterdir()), "nothing was written"


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """Every temporary file written under ``tmp_path/disk`` fails half-way with ENOSPC;
    rescue copies go to ``tmp_path/rescue``."""
    disk = tmp_path / "disk"
    disk.mkdir()
    monkeypatch.setenv(atomic.RESCUE_ENV, str(tmp_path / "rescue"))
    real = atomic.write_temp

    def filling(directory, name, write):
        if disk.resolve() not in (Path(directory).resolve(), *Path(directory).resolve().parents):
            return real(directory, name, write)

        def half(fh):
            fh.write(b"x" * 4096)
            raise OSError(errno.ENOSPC, "No space left on device")

        return real(directory, name, half)

    monkeypatch.setattr(atomic, "write_temp", filling)
    monkeypatch.setattr(files, "write_temp", filling)
    return disk


def test_a_write_failing_after_training_keeps_the_result(full_disk, tmp_path, capsys):
    code, out, err = _cli(
        ["train", "--preset", "tiny", "--steps", "30", "--out", full_disk / "r", "--json"], capsys
    )
    printed = json.loads(out)  # the numbers are still printed, as one JSON object
    line = _one_line(err)
    assert code == 1 and str(full_disk / "r") in line and "No space left" in line
    kept = Path(line.split("kept in ")[1].split(";")[0])
    assert kept.parent == tmp_path / "rescue"
    rescued = load_run(kept)  # whole and verified
    assert [c.to_dict() for c in rescued.configs] == [printed["config"]]
    code, out, err = _cli([*SWEEP, "--values", "0.003", "--summary", full_disk, "--json"], capsys)
    line = _one_line(err)
    assert code == 1 and json.loads(out)["instances"] and "LR1.json" in line
    kept = Path(line.split("kept in ")[1].split(";")[0])
    assert [c.lr for c in load_summary(kept / "LR1.json").configs] == [0.003]
    assert not list(full_disk.rglob("*")), "no temporary file is left on the full disk"


def test_a_failing_library_write_keeps_the_old_pair_and_rescues_the_new(run, full_disk):
    good = save_summary(run, full_disk.parent / "good", name="LR1", scale="book")
    for name in ("LR1.json", "LR1.npz"):
        (full_disk / name).write_bytes((good.parent / name).read_bytes())
    with pytest.raises(WriteFailed, match="kept in") as err:
        save_summary(run.select([1]), full_disk, name="LR1", scale="book", overwrite=True)
    assert len(load_summary(full_disk / "LR1.json").configs) == 2, "the old pair stands"
    assert len(load_summary(err.value.kept / "LR1.json").configs) == 1, "the new one is kept"
    assert sorted(p.name for p in full_disk.iterdir()) == ["LR1.json", "LR1.npz"]


# -- 4. versions -------------------------------------------------------------------------------


def test_newer_results_are_refused_and_never_overwritten_without_overwrite(tmp_path, capsys):
    assert _cli([*SWEEP, "--values", "0.003", "--summary", tmp_path], capsys)[0] == 0
    path = tmp_path / "LR1.json"
    _reseal(path, lambda m: {**m, "results_version": RESULTS_VERSION + 1})
    before = path.read_bytes()
    with pytest.raises(NewerVersionError, match=f"results_version {RESULTS_VERSION + 1}"):
        load_summary(path)
    with pytest.raises(NewerVersionError):
        holds_configs(path, [])
    code, out, err = _cli([*SWEEP, "--values", "0.003", "--summary", tmp_path, "--resume"], capsys)
    assert code == 2 and out == "" and "newer" in _one_line(err) and "--overwrite" in err
    assert path.read_bytes() == before, "a newer file is never retrained over"
    args = [*SWEEP, "--values", "0.003", "--summary", tmp_path, "--resume", "--overwrite"]
    assert _cli(args, capsys)[0] == 0
    assert load_summary(path).meta["results_version"] == RESULTS_VERSION


def test_run_format_versions_newer_refused_older_read(run, tmp_path):
    newer, older = save_run(run, tmp_path / "newer"), save_run(run, tmp_path / "older")
    _reseal(newer / "run.json", lambda m: {**m, "format_version": 99})
    with pytest.raises(NewerVersionError, match="format_version 99"):
        load_run(newer)
    _reseal(older / "run.json", lambda m: {k: v for k, v in m.items() if k != "format_version"})
    _unseal(older / "run.json")  # as written before digests and versions were recorded
    torch.testing.assert_close(load_run(older).model.flat, run.model.flat)


# -- 5 and 6. merge ----------------------------------------------------------------------------


def _shards(folder: Path, capsys, extra=((), ())) -> list[Path]:
    for i in range(2):
        args = [*SWEEP, "--values", "0.003,0.01", "--summary", folder, "--shard", f"{i}/2"]
        assert _cli([*args, *extra[i]], capsys)[0] == 0
    return [folder / f"LR1.part-{i}-of-2.json" for i in range(2)]


@pytest.mark.parametrize("name", ["/monosem_escaped_LR1", "../LR1", "sub/LR1", ".LR1"])
def test_merge_writes_only_under_its_summary_directory(name, tmp_path, capsys):
    parts = _shards(tmp_path / "parts", capsys)
    for part in parts:
        _reseal(part, lambda m: {**m, "name": name})
    before = set(Path("/").iterdir()), set(tmp_path.rglob("*"))
    code, _, err = _cli(["merge", *parts, "--summary", tmp_path / "out"], capsys)
    assert code == 2 and "is not allowed" in _one_line(err)
    assert (set(Path("/").iterdir()), set(tmp_path.rglob("*"))) == before


@pytest.mark.parametrize(
    "extra,field",
    [((("--steps", "30"), ("--steps", "40")), "steps"), ((("--compact",), ()), "neurons")],
)
def test_merge_refuses_shards_made_with_other_options(extra, field, tmp_path, capsys):
    parts = _shards(tmp_path, capsys, extra)
    code, _, err = _cli(["merge", *parts, "--summary", tmp_path / "out"], capsys)
    assert code == 2 and f"disagree on {field}" in _one_line(err)
    assert not (tmp_path / "out").exists()


# -- 7 and 8. divergence and non-finite values -------------------------------------------------


def test_a_diverged_run_is_flagged_where_it_is_saved_and_warned_about(tmp_path, capsys):
    code, out, err = _cli(
        ["train", "--preset", "tiny", "--lr", "1e3", "--out", tmp_path / "r", "--json"], capsys
    )
    assert code == 0 and "warning: instance 0" in _one_line(err) and "diverged" in err
    assert json.loads(out)["instances"][0]["flags"] == ["diverged", "all_dead"]
    assert json.loads((tmp_path / "r" / "run.json").read_text())["flags"] == [
        ["diverged", "all_dead"]
    ]
    healthy = train(preset("tiny", steps=200), progress=False)
    path = save_summary(healthy, tmp_path, name="T", scale="book")
    assert load_summary(path).meta["instances"][0]["flags"] == []


def test_values_float16_cannot_hold_are_stored_in_float32_and_nan_never(run, tmp_path):
    big = run.select([0])
    big.model.split()[1].data.fill_(1e5)  # a bias float16 rounds to inf
    s = load_summary(save_summary(big, tmp_path, name="B", scale="book"))
    assert s.array("bias", 0).dtype == np.float32 and np.isfinite(s.array("bias", 0)).all()
    with pytest.raises(ValueError, match="nan or inf"):
        write_summary(tmp_path, "N", {"instances": []}, {"bias_000": np.array([np.inf])})
    assert not (tmp_path / "N.json").exists()
    # a file that older code wrote with an overflowed float16 bias is refused and stale
    old = save_summary(run, tmp_path / "old" / "book", name="LR1", scale="book")
    _rewrite_npz(old.with_suffix(".npz"), lambda a: a["bias_001"].__setitem__(0, np.inf))
    _unseal(old)
    with pytest.raises(StoredFileError, match="bias_001 holds 1 non-finite"):
        load_summary(old)
    assert stale_files(tmp_path / "old") == ["book/LR1.json"]


def test_non_finite_weights_are_refused_by_load_interpret_and_the_cache(run, tmp_path, capsys):
    path = save_run(run, tmp_path / "r")
    _rewrite_npz(path / "weights.npz", lambda a: a["W1"].__setitem__((0, 0, 0), np.nan))
    _reseal(path / "run.json", lambda m: m)
    with pytest.raises(StoredFileError, match="W1 holds 1 non-finite"):
        load_run(path)
    code, out, err = _cli(["interpret", path, "--json"], capsys)
    assert code == 2 and out == "" and "non-finite" in _one_line(err)
    live = run.select([0])
    live.model.split()[1].data[0, 0] = float("inf")
    with pytest.raises(ValueError, match="non-finite weights"):
        interpret(live)
    cfg = preset("tiny", steps=20)
    cache = RunCache(tmp_path / "cache")
    cache.load_or_train(cfg, progress=False)
    entry = cache.path(cfg)
    _rewrite_npz(entry / "weights.npz", lambda a: a["b"].__setitem__((0, 0), np.nan))
    _reseal(entry / "run.json", lambda m: m)
    with pytest.warns(UserWarning, match="non-finite"):
        again = cache.load_or_train(cfg, progress=False)
    assert torch.isfinite(again.model.flat).all() and load_run(entry).configs == again.configs


# -- 9. memory ---------------------------------------------------------------------------------


def test_a_config_too_large_for_memory_is_refused_with_the_estimate(capsys, monkeypatch):
    huge = ["train", "--preset", "tiny", "--N", "1000000", "--m", "1000", "--k", "1000000"]
    code, out, err = _cli([*huge, "--steps", "1"], capsys)
    line = _one_line(err)
    assert code == 2 and out == "" and "needs about" in line and "available" in line
    monkeypatch.setenv("MONOSEM_MEMORY_LIMIT", "20K")
    with pytest.raises(InsufficientMemory, match=r"but 20\.0 KB is available"):
        train(preset("tiny", steps=5), progress=False)


# -- 10 to 12. malformed files, bad cache entries, leftovers -------------------------------------


@pytest.mark.parametrize(
    "edit,says",
    [
        (lambda m: {**m, "configs": []}, "non-empty list of configs"),
        (lambda m: [m], "holds a list"),
        (lambda m: {**m, "configs": [{**m["configs"][0], "k": -3}] * 4}, "config 0 is invalid"),
        (lambda m: {**m, "configs": "LR1"}, "non-empty list of configs"),
        (lambda m: {**m, "format": "other"}, "is not a monosem-run file"),
        (lambda m: {**m, "format_version": "two"}, "is not a version number"),
        ("P", "P has shape (2, 3, 16)"),
        ("not json", "not a readable run"),
    ],
)
def test_malformed_runs_get_one_line_naming_the_file(edit, says, run, tmp_path, capsys):
    path = save_run(run, tmp_path / "r")
    meta_path = path / "run.json"
    if edit == "P":  # a consistent pair (digests match) with the wrong shape
        _rewrite_npz(path / "weights.npz", lambda a: a.__setitem__("P", a["P"][:, :3]))
        _reseal(meta_path, lambda m: m)
    elif edit == "not json":
        meta_path.write_text("{ broken")
    else:  # written without digests, so the check itself must catch it
        meta = json.loads(meta_path.read_text())
        meta.pop("integrity")
        meta_path.write_text(json.dumps(edit(meta)))
    code, out, err = _cli(["interpret", path], capsys)
    line = _one_line(err)
    assert code == 2 and out == "" and str(path) in line and says in line, line


def test_a_summary_with_an_invalid_config_names_its_file(run, tmp_path):
    path = save_summary(run, tmp_path, name="T", scale="book")

    def bad(meta):
        meta["instances"][1]["config"]["eps"] = 7
        return meta

    _reseal(path, bad)
    with pytest.raises(StoredFileError, match=r"T\.json: config 1 is invalid: eps=7"):
        load_summary(path)


def test_a_bad_cache_entry_is_rebuilt_once(tmp_path):
    cfg = preset("tiny", steps=20)
    cache = RunCache(tmp_path)
    first = cache.load_or_train(cfg, progress=False)
    entry = cache.path(cfg)
    _reseal(entry / "run.json", lambda m: {**m, "configs": []})
    with pytest.warns(UserWarning, match="damaged"):
        cache.load_or_train(cfg, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = cache.get(cfg)  # rebuilt: a clean hit, no warning
    torch.testing.assert_close(again.model.flat, first.model.flat)


def test_files_written_before_digests_still_load(run, tmp_path):
    path = save_summary(run, tmp_path, name="T", scale="book", representative=[1])
    _unseal(path)
    s = load_summary(path)
    assert len(s.configs) == 2 and s.run(1).model.flat.shape[-1] > 0
    assert "integrity" not in s.meta
