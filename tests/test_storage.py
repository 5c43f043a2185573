"""Saving, loading and caching runs: nothing is unpickled, lost or silently overwritten."""

import json
import warnings

import numpy as np
import pytest
import torch

import monosem_lib.version
from monosem_lib.analysis.metrics import summarize
from monosem_lib.core.config import preset
from monosem_lib.core.training import train
from monosem_lib.store.cache import RunCache, load_or_train, run_key
from monosem_lib.store.files import load_run
from monosem_lib.store.summaries import save_run

pytestmark = pytest.mark.oldest


@pytest.fixture(scope="module")
def run():
    return train(
        [preset("tiny", steps=64, lr=lr, instances=2) for lr in (0.01, 0.003)], progress=False
    )


def test_round_trip_keeps_weights_history_and_checkpoints(run, tmp_path):
    path = save_run(run, tmp_path / "r")
    back = load_run(path)
    assert back.configs == run.configs
    torch.testing.assert_close(back.model.flat, run.model.flat)
    torch.testing.assert_close(back.P, run.P)
    torch.testing.assert_close(back.loss_history, run.loss_history)
    assert sorted(back.checkpoints) == sorted(run.checkpoints)
    assert summarize(back, eval_samples=1024) == summarize(run, eval_samples=1024)


def test_saved_files_are_plain_json_and_npz(run, tmp_path):
    path = save_run(run, tmp_path / "r")
    meta = json.loads((path / "run.json").read_text())
    assert meta["format"] == "monosem-run" and meta["library_version"]
    assert len(meta["configs"]) == 4 and len(meta["metrics"]) == 4
    assert set(meta["metrics"][0]) >= {"final_loss", "mono_per_feature", "features_covered"}
    with np.load(path / "weights.npz", allow_pickle=False) as data:
        assert data["W1"].shape == (4, 32, 8) and data["P"].shape == (4, 8, 16)


def test_mono_counts_recompute_from_the_files_with_numpy_alone(run, tmp_path):
    path = save_run(run, tmp_path / "r")
    meta = json.loads((path / "run.json").read_text())
    with np.load(path / "weights.npz", allow_pickle=False) as d:
        W1, b, P = d["W1"].astype(np.float64), d["b"].astype(np.float64), d["P"].astype(np.float64)
    sfa = np.maximum(np.einsum("ikm,imn->ikn", W1, P) + b[:, :, None], 0)  # relu(W1 P e_j + b)
    total = sfa.sum(2)
    share = np.where(total > 1e-6, sfa.max(2) / np.maximum(total, 1e-30), 0)
    mono = (share > 0.999).sum(1)
    assert mono.tolist() == [m["mono_neurons"] for m in meta["metrics"]]


def test_refuses_to_overwrite_a_users_directory(run, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        save_run(run, target)
    assert (target / "notes.txt").read_text() == "precious"
    save_run(run, tmp_path / "empty_ok")  # a missing directory is fine
    (tmp_path / "empty").mkdir()
    save_run(run, tmp_path / "empty")  # so is an empty one
    save_run(run, target, overwrite=True)
    assert not (target / "notes.txt").exists() and (target / "run.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], (
        "no temporary directories left behind"
    )


def test_load_rejects_damaged_runs_with_a_clear_message(run, tmp_path):
    path = save_run(run, tmp_path / "r")
    with pytest.raises(ValueError, match="not a saved run"):
        load_run(tmp_path)
    (path / "weights.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="damaged"):
        load_run(path)


def test_cache_hits_and_recovers_from_corruption(tmp_path):
    cfg = preset("tiny", steps=20)
    cache = RunCache(tmp_path)
    first = cache.load_or_train(cfg, progress=False)
    entry = cache.path(cfg)
    assert entry.exists()
    second = load_or_train(cfg, cache=tmp_path)
    torch.testing.assert_close(second.model.flat, first.model.flat)
    assert second.train_seconds == pytest.approx(first.train_seconds), (
        "a hit loads, it does not retrain"
    )
    (entry / "run.json").write_text("{ broken")
    with pytest.warns(UserWarning, match="damaged"):
        third = cache.load_or_train(cfg, progress=False)
    torch.testing.assert_close(third.model.flat, first.model.flat)
    assert load_run(entry).configs == first.configs, "the damaged entry was rebuilt"


def test_cache_key_covers_every_instance(tmp_path):
    a = preset("tiny", instances=2)
    assert run_key(a) == run_key(a.expand())
    assert run_key(a) != run_key(a.replace(lr=0.02))
    assert run_key(a) != run_key(a.replace(instances=3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_or_train(preset("tiny", steps=5), cache=False).steps_done == 5


def test_summary_round_trip_is_compact_and_has_provenance(run, tmp_path):
    from monosem_lib.store.files import load_summary
    from monosem_lib.store.results import Results
    from monosem_lib.store.summaries import save_summary

    path = save_summary([run], tmp_path, name="T", scale="book", representative=[1])
    s = load_summary(path)
    assert (
        s.meta["library_version"]
        and s.meta["source_digest"]
        and s.meta["device"]
        and s.meta["created"]
    )
    assert s.configs == list(run.configs) and len(s.metrics) == 4
    assert s.array("sfa", 2).dtype == np.float16 and s.array("sfa", 2).shape == (32, 16)
    assert s.meta["instances"][1]["weights"] and s.array("W1", 1).shape == (32, 8)
    with pytest.raises(KeyError):
        s.array("W1", 0)  # weights only for representative instances
    assert len(s.meta["instances"][0]["loss_history"]["loss"]) <= 256
    assert Results.from_summary(s).where(lr=0.003) == [2, 3]
    assert s.meta["results_version"] == monosem_lib.version.RESULTS_VERSION
    with pytest.raises(FileExistsError):
        save_summary([run], tmp_path, name="T", scale="book")
    (tmp_path / "T.json").write_text("{")
    with pytest.raises(ValueError, match="not a readable summary"):
        load_summary(tmp_path / "T")


def test_digest_covers_every_module_that_changes_a_result(tmp_path):
    import shutil
    from pathlib import Path

    import monosem_lib
    from monosem_lib.version import RESULT_SOURCES, SOURCE_DIGEST, source_digest

    assert set(RESULT_SOURCES) >= {
        "core/config.py",
        "core/data.py",
        "core/model.py",
        "core/optim.py",
        "core/training.py",
        "core/step.py",
        "analysis/metrics.py",
        "paper/table1.py",
    }
    src = Path(monosem_lib.__file__).parent
    for name in RESULT_SOURCES:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(src / name, tmp_path / name)
    assert source_digest(tmp_path) == SOURCE_DIGEST
    for name in RESULT_SOURCES:
        original = (tmp_path / name).read_text()
        (tmp_path / name).write_text(original + "\n# an edit\n")
        assert source_digest(tmp_path) != SOURCE_DIGEST, f"editing {name} must change the digest"
        (tmp_path / name).write_text(original)


def test_cache_hit_returns_the_run_on_the_configs_device(tmp_path, monkeypatch):
    """A hit is loaded onto the device the config asks for, as a miss trains there. CI has no
    GPU, so the device mapping is faked: 'cuda' resolves to torch's meta device."""
    import monosem_lib.store.cache as cache_mod

    cfg = preset("tiny", steps=5)
    cache = RunCache(tmp_path)
    cache.load_or_train(cfg, progress=False)
    seen = []

    def fake(device: str) -> torch.device:
        seen.append(device)
        return torch.device("meta") if device == "cuda" else torch.device("cpu")

    monkeypatch.setattr(cache_mod, "resolve_device", fake)
    # File the cpu-trained entry under the cuda config's key, as if a GPU had trained it.
    cuda_cfg = cfg.replace(device="cuda")
    (tmp_path / run_key(cfg)).rename(tmp_path / run_key(cuda_cfg))
    hit = cache.get(cuda_cfg)
    assert seen == ["cuda"], f"the hit should resolve the config's device, resolved {seen}"
    assert hit.model.flat.device.type == "meta" and hit.P.device.type == "meta", (
        f"a cache hit for a cuda config came back on {hit.model.flat.device}"
    )
