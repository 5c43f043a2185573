"""What every stored ``.npz`` holds, on any numpy the library supports: exactly its arrays
(numpy before 2.2 stored ``np.savez``'s ``allow_pickle`` keyword as an array), never an
object array, and old files that carry that stray array still load, with a note. Also
where the run cache lives. The oldest stage (``make test-oldest``) runs these on the oldest
supported numpy."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import monosem_lib.store.files as files
import monosem_lib.store.sae_files as sae_files
from monosem_lib.core.config import preset
from monosem_lib.core.sae import SAEConfig
from monosem_lib.core.sae_training import train_sae
from monosem_lib.core.training import train
from monosem_lib.store.atomic import StoredFileError
from monosem_lib.store.cache import default_cache_dir
from monosem_lib.store.summaries import save_run, save_summary
from monosem_lib.store.verify import STRAY_ARRAY, write_npz

pytestmark = pytest.mark.oldest

RUN_ARRAYS = {"W1", "b", "W2", "P", "loss_history", "checkpoint_steps", "checkpoints"}


@pytest.fixture(scope="module")
def run():
    return train(preset("tiny", steps=32, instances=2), progress=False)


@pytest.fixture(scope="module")
def sae():
    return train_sae(SAEConfig(d=8, latents=12, batch=16, steps=5), lambda: torch.rand(1, 16, 8))


def _members(npz: Path) -> set[str]:
    with zipfile.ZipFile(npz) as archive:
        return {name.removesuffix(".npy") for name in archive.namelist()}


def _with_stray(fh, arrays, compress=False):
    """What ``np.savez(fh, allow_pickle=False, **arrays)`` wrote under numpy < 2.2."""
    write_npz(fh, {**arrays, STRAY_ARRAY: np.array(False)}, compress)


def test_every_stored_npz_holds_exactly_its_arrays(run, sae, tmp_path):
    assert _members(save_run(run, tmp_path / "run") / "weights.npz") == RUN_ARRAYS
    save_summary([run], tmp_path, name="S", scale="book", representative=[0])
    expected = {f"{key}_{i:03d}" for i in (0, 1) for key in ("bias", "sfa")}
    expected |= {f"{key}_000" for key in ("W1", "b", "W2", "P")}
    assert _members(tmp_path / "S.npz") == expected
    sae_files.save_sae(sae, tmp_path / "sae")
    held = _members(tmp_path / "sae" / "weights.npz")
    assert STRAY_ARRAY not in held and {"W_enc", "loss_history"} <= held
    sae_files.write_batch(tmp_path, "B", {"rows": [{}], "instances": 1}, {"x_000": np.ones(2)})
    assert _members(tmp_path / "B.npz") == {"x_000"}


def test_old_files_with_the_stray_array_load_with_a_note(run, sae, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "write_npz", _with_stray)
    monkeypatch.setattr(sae_files, "write_npz", _with_stray)
    save_run(run, tmp_path / "run")
    save_summary([run], tmp_path, name="S", scale="book")
    sae_files.save_sae(sae, tmp_path / "sae")
    sae_files.write_batch(tmp_path, "B", {"rows": [{}], "instances": 1}, {"x_000": np.ones(2)})
    assert STRAY_ARRAY in _members(tmp_path / "S.npz")
    with pytest.warns(UserWarning, match="ignored its array 'allow_pickle'"):
        back = files.load_run(tmp_path / "run")
    torch.testing.assert_close(back.model.flat, run.model.flat)
    with pytest.warns(UserWarning, match="S.npz: ignored its array 'allow_pickle'"):
        summary = files.load_summary(tmp_path / "S.json")
    assert STRAY_ARRAY not in summary.all_arrays() and summary.configs == list(run.configs)
    with pytest.warns(UserWarning, match="allow_pickle"):
        sae_files.load_sae(tmp_path / "sae")
    with pytest.warns(UserWarning, match="allow_pickle"):
        assert sae_files.load_batch(tmp_path / "B").has("x_000")


def test_a_stray_named_array_that_is_data_is_still_refused(run, tmp_path, monkeypatch):
    """Only the 0-d boolean that old numpy wrote is ignored; anything else by that name is
    an unexpected array."""
    data = {STRAY_ARRAY: np.ones(3)}
    monkeypatch.setattr(files, "write_npz", lambda fh, a, compress=False: write_npz(fh, a | data))
    save_summary([run], tmp_path, name="S", scale="book")
    with pytest.raises(StoredFileError, match="unexpected array 'allow_pickle'"):
        files.load_summary(tmp_path / "S")


def test_object_arrays_are_refused_on_save_and_on_load(tmp_path, monkeypatch):
    rows = {"rows": [{}], "instances": 1}
    objects = {"x_000": np.array([1, "a"], dtype=object)}
    with pytest.raises(ValueError, match="x_000 is an object array"):
        sae_files.write_batch(tmp_path, "B", rows, objects)
    with pytest.raises(ValueError, match="'allow_pickle' is not an allowed array name"):
        sae_files.write_batch(tmp_path, "B", rows, {STRAY_ARRAY: np.array(False)})
    with pytest.raises(ValueError, match="Object arrays cannot be saved"):
        write_npz(Path(tmp_path / "x.npz").open("wb"), objects)
    # A pickled object array, sealed as if this library had written it, is still refused.
    monkeypatch.setattr(sae_files, "storable", lambda arrays, where: None)
    monkeypatch.setattr(sae_files, "write_npz", lambda fh, a, compress=False: np.savez(fh, **a))
    sae_files.write_batch(tmp_path, "B", rows, objects)
    with pytest.raises(StoredFileError, match="B.npz: is damaged.*Object arrays cannot be loaded"):
        sae_files.load_batch(tmp_path / "B")


@pytest.mark.parametrize(
    "monosem, xdg, expected",
    [
        ("/m/cache", "/x/cache", "/m/cache"),  # MONOSEM_CACHE_DIR wins
        (None, "/x/cache", "/x/cache/monosem_lib"),
        ("", "/x/cache", "/x/cache/monosem_lib"),  # empty counts as unset
        (None, "relative/cache", "~/.cache/monosem_lib"),  # the XDG spec: ignore relative
        (None, "", "~/.cache/monosem_lib"),
        (None, None, "~/.cache/monosem_lib"),
    ],
)
def test_the_cache_honours_xdg_cache_home(monosem, xdg, expected, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name, value in (("MONOSEM_CACHE_DIR", monosem), ("XDG_CACHE_HOME", xdg)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert default_cache_dir() == Path(expected).expanduser()
