"""Claims computed from stored summaries (chapter 7), on tiny sweeps with known structure."""

import json
from pathlib import Path

import pytest

from monosem_lib import reproduction as rp
from monosem_lib.config import preset
from monosem_lib.storage import save_summary
from monosem_lib.training import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    base = preset("tiny", steps=120, instances=2)
    lr1 = train([base.replace(lr=lr) for lr in (0.003, 0.03)], progress=False)
    lr3 = train([base.replace(lr=lr, init_bias=-0.5, bias_decay=5.0) for lr in (0.003, 0.03)], progress=False)
    k1 = [train(base.replace(k=k), progress=False) for k in (16, 32)]
    lr5 = train(preset("tiny", steps=60, task="abs", k=48), progress=False)
    save_summary(lr1, root / "book", name="LR1", scale="book")
    save_summary(lr3, root / "book", name="LR3", scale="book", representative=[0])
    save_summary(k1, root / "book", name="K1", scale="book")
    save_summary(lr5, root / "book", name="LR5", scale="book")
    return rp.load_data(root)


def test_load_data_finds_what_exists(data):
    assert set(data["book"]) == {"LR1", "LR3", "K1", "LR5"} and data["paper"] == {}


def test_claims_have_one_entry_per_swept_value(data):
    c1 = rp.claim1(data["book"]["LR1"])
    assert set(c1["loss"]) == {0.003, 0.03} and c1["loss_spread"] >= 0 and c1["mono_span"] >= 0
    assert set(rp.claim1(data["book"]["LR1"], exclude_lrs=(0.003,))["loss"]) == {0.03}
    c2 = rp.claim2(data["book"]["LR1"])
    assert set(c2["mono"]) == set(c2["poly"]) == {0.003, 0.03}
    c3 = rp.claim3(data["book"]["LR1"], data["book"]["LR3"])
    assert set(c3["mono_per_feature"]) == {0.003, 0.03}
    assert set(rp.claim4(data["book"]["K1"])["features_covered"]) == {16, 32}
    pairs = rp.abs_pairs(data["book"]["LR5"])
    assert len(pairs) == 1 and pairs[0]["pairs"] <= min(pairs[0]["positive"], pairs[0]["negative"])


def test_claim5_interprets_stored_weights(data):
    report = rp.claim5(data["book"]["LR3"], 0)
    assert sum(report["counts"].values()) == 32
    assert list(report["sets"]) == ["residual_block", "always_on"]
    for s in report["sets"].values():
        assert {"acts_linearly", "matches_target", "low_rank_identity"} <= set(s["verdicts"])
    with pytest.raises(ValueError, match="no stored weights"):
        rp.claim5(data["book"]["LR3"], 1)


def test_the_books_stored_data_have_provenance_and_stay_small():
    files = list((ROOT / "data").rglob("*"))
    size = sum(f.stat().st_size for f in files if f.is_file())
    assert size < 20 * 2**20, f"data/ holds {size / 2**20:.1f} MB; the budget is 20 MB"
    for path in (ROOT / "data").rglob("*.json"):
        meta = json.loads(path.read_text())
        for key in ("library_version", "source_digest", "device", "created", "torch_version", "instances"):
            assert meta.get(key), f"{path.name} lacks {key}"
        assert all("config" in i and "metrics" in i for i in meta["instances"])


def test_at_scale_leaves_missing_batches_empty(data):
    assert rp.at_scale(data["paper"], "LR1", rp.claim1) is None
    assert rp.at_scale(data["book"], ("LR1", "LR3"), rp.claim3) == rp.claim3(data["book"]["LR1"], data["book"]["LR3"])
    assert rp.at_scale(data["book"], "LR1", rp.claim1, exclude_lrs=(0.003,))["loss"].keys() == {0.03}
