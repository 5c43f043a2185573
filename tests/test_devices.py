"""A reader on a GPU runtime trains the chapters' batches there: the book's presets ask for
``device="auto"``, which resolves to CUDA when torch sees one. CI has no GPU, so the test
pretends: ``torch.cuda.is_available`` is patched to say yes, and a patched resolver records
what training asks for while it still trains on the CPU."""

from __future__ import annotations

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
