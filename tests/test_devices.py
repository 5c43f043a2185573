"""A reader on a GPU runtime trains the chapters' batches there: the book's presets ask for
``device="auto"``, which resolves to CUDA when torch sees one. CI has no GPU, so the test
pretends: ``torch.cuda.is_available`` is patched to say yes, and a patched resolver records
what training asks for while it still trains on the CPU."""

from __future__ import annotations

import pytest
import torch

import monosem_lib as ml
from monosem_lib import book
from monosem_lib.core import training
from monosem_lib.core.data import resolve_device


def _chapter_configs() -> list[ml.Config]:
    """Every config the chapters train at book scale, and the presets they start from."""
    configs = [ml.preset("book"), ml.preset("live"), book.engineered_model("book")]
    configs += book.lr_sweep("book") + book.bias_factorial("book") + book.live_grid()
    configs += book.width_sweep("book")
    configs += [c for group in book.other_tasks("book").values() for c in group]
    return configs


def test_the_book_scale_batches_resolve_to_cuda_when_there_is_one(monkeypatch):
    configs = _chapter_configs()
    assert {c.device for c in configs} == {"auto"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert {resolve_device(c.device).type for c in configs} == {"cuda"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert {resolve_device(c.device).type for c in configs} == {"cpu"}


def test_training_a_book_config_goes_through_the_auto_path(monkeypatch):
    asked = []

    def resolver(device: str) -> torch.device:
        asked.append(device)
        return torch.device("cpu")  # where a GPU runtime would give cuda

    monkeypatch.setattr(training, "resolve_device", resolver)
    cfg = ml.preset("book", N=8, m=4, k=16, batch=16, steps=20)
    run = ml.train(cfg, progress=False)
    assert asked == ["auto"] and run.model.flat.device.type == "cpu"


def test_the_frontier_allocates_nothing_on_an_unnamed_device(tmp_path, monkeypatch):
    """On a GPU every tensor the frontier makes must be on the run's device or, on purpose,
    the CPU. CI has no GPU, so the test makes a stray allocation fail: the default device is
    ``meta``, which holds no data, and a tensor made without naming its device lands there
    and breaks the first operation that mixes it with the run's. A whole tiny frontier (models,
    every SAE kind on x and h, resampling, thresholds, scores) trains through it."""
    from monosem_lib.paper import sae_frontier as sf

    shape = sf.FrontierShape(
        "tiny",
        ml.preset("tiny", device="cpu"),
        regimes=((8, 1 / 8),),
        samples=(2**11,),
        seeds=(0,),
        sae_batch=64,
        resample=1,
    )
    monkeypatch.setitem(sf.FRONTIER_SHAPES, "tiny", shape)
    monkeypatch.setenv("MONOSEM_CACHE_DIR", str(tmp_path / "cache"))
    assert sf.run_frontier(tmp_path, "tiny", budget_seconds=0) == []
    torch.set_default_device("meta")
    try:
        written = sf.run_frontier(tmp_path, "tiny", progress=False, device="cpu")
    finally:
        torch.set_default_device(None)
    assert written == [c.name for c in sf.frontier_cells("tiny")]
    # The device is where a cell was made, not what it is: the cells are current for a run
    # on the shape's own device, and each file says where it was made.
    assert sf.stale_frontier_cells(tmp_path, "tiny") == []
    stored = sf.load_frontier(tmp_path, "tiny").values()
    assert {(b.meta["device"], b.meta["device_name"]) for b in stored} == {("cpu", "cpu")}
    assert {b.meta["threads"] for b in stored} == {torch.get_num_threads()}
    with pytest.raises(ValueError, match="device='tpu' is not allowed"):
        sf.run_frontier(tmp_path, "tiny", device="tpu")
