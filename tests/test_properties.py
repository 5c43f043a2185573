"""Property tests (hypothesis) where hand-written code meets arbitrary input: how numbers
print, which file names may be written, config round trips, the batched optimizers against
the plain references, and the seals of stored files. Few examples each and no deadline, so
the unit tests stay quick; the oldest stage runs them too."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from torch import nn

from monosem_lib.book.text import sig, table_number
from monosem_lib.core.config import (
    DTYPES,
    FEATURE_DISTS,
    NONLINEARITIES,
    OPTIMIZERS,
    SCHEDULES,
    TASKS,
    Config,
    ConfigError,
    preset,
)
from monosem_lib.core.model import ToyModel
from monosem_lib.core.optim import BatchedAdam, BatchedLamb
from monosem_lib.core.reference import ReferenceLamb
from monosem_lib.core.sae import SAE_KINDS, SAEConfig
from monosem_lib.core.training import train
from monosem_lib.store.atomic import StoredFileError
from monosem_lib.store.files import load_summary
from monosem_lib.store.summaries import save_summary, shard_stem
from monosem_lib.store.verify import check_stem

pytestmark = pytest.mark.oldest

QUICK = settings(max_examples=60, deadline=None)
FEW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(allow_nan=False, allow_infinity=False)


# -- numbers as the book prints them ----------------------------------------------------------
@QUICK
@given(st.integers(-(10**18), 10**18), st.integers(1, 6))
def test_sig_prints_an_integer_whole(n, digits):
    assert sig(n, digits) == str(n)
    if abs(n) < 2**53:  # exactly representable: the float prints whole too
        assert sig(float(n), digits) == str(n)


@QUICK
@given(finite, st.integers(1, 6))
def test_sig_gives_the_digits_asked_and_never_an_exponent_from_one_up(x, digits):
    text = sig(x, digits)
    if x.is_integer() and abs(x) >= 10 ** (digits - 1):
        assert text == str(int(x))
        return
    assert float(text) == float(f"{x:.{digits}g}"), (x, digits, text)
    if abs(x) >= 1:
        assert "e" not in text, (x, digits, text)


@QUICK
@given(finite.filter(lambda v: v != 0), st.integers(1, 6))
def test_sig_keeps_the_sign_and_is_symmetric(x, digits):
    text = sig(x, digits)
    assert text.startswith("-") == (x < 0), (x, text)
    assert sig(-x, digits) == (text[1:] if x < 0 else "-" + text)


@QUICK
@given(finite)
@example(1048576.0)
@example(-100000.0)
def test_table_numbers_print_integers_whole_and_others_without_exponents(x):
    text = table_number(x)
    assert text.startswith("-") == (x < 0 and text.strip("-0.") != ""), (x, text)
    digits = text.replace(",", "")  # from 100,000 up, integers group their digits in threes
    if "," in text:
        assert x.is_integer() and abs(x) >= 100_000, (x, text)
        assert all(len(g) == 3 for g in text.lstrip("-").split(",")[1:]), (x, text)
    if x.is_integer() and abs(x) < 1e15:
        assert digits == str(int(x))
    if x == 0 or abs(x) >= 1e-4:
        assert "e" not in text, (x, text)
        figures = 3 if abs(x) < 100 else None  # to the unit from 100 up
        want = f"{x:.3g}" if figures else f"{x:.0f}"
        assert math.isclose(float(digits), float(want)) or x.is_integer(), (x, text)


# -- file names: a stored name never leaves its folder ----------------------------------------
@QUICK
@given(st.text(max_size=40) | st.sampled_from(["..", ".", "a/..", "..a", "a..b", "/", "LR1"]))
def test_an_accepted_stem_stays_in_its_folder(name):
    base = Path("/stored/data")
    try:
        check_stem(name)
    except ValueError as err:
        assert repr(name) in str(err)
        return
    for suffix in (".json", ".npz", ""):
        path = base / f"{name}{suffix}"
        assert Path(path.as_posix().replace("//", "/")).parent == base
        assert Path(*[p for p in path.parts if p != "."]).resolve().parent == base
    assert "/" not in name and "\\" not in name and "\0" not in name and ".." not in name
    shard = shard_stem(name, 0, 2)
    if len(shard) <= 200:
        assert check_stem(shard) == shard


# -- configs: every valid config survives JSON, every invalid one is a ConfigError --------------
def _value(good):
    bad = st.none() | st.booleans() | st.text(max_size=8) | st.just([1])
    return good | bad if isinstance(good, st.SearchStrategy) else st.sampled_from(good) | bad


CONFIG_FIELDS = {
    "N": st.integers(-2, 70),
    "m": st.integers(-2, 70),
    "k": st.integers(-2, 300),
    "eps": finite,
    "feature_dist": FEATURE_DISTS,
    "task": TASKS,
    "nonlinearity": NONLINEARITIES,
    "batch": st.integers(0, 4096),
    "steps": st.integers(0, 10**6),
    "lr": finite,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "init_bias": finite,
    "bias_decay": finite,
    "l1": finite,
    "seed": st.integers(-3, 2**40),
    "instances": st.integers(0, 64),
    "device": ("cpu", "cuda", "auto", "cuda:0", "cuda:12", "cuda:", "cuda:x", "cuda:²", "tpu"),
    "dtype": DTYPES,
}


def _round_trips(kind, data):
    try:
        config = kind.from_dict(data)
    except ConfigError as err:
        assert err.field in data or err.field in ("m", "topk", "l1", "aux_k", "bias_decay")
        return
    back = kind.from_dict(json.loads(json.dumps(config.to_dict(), allow_nan=False)))
    assert back == config and back.to_dict() == config.to_dict()
    if config.device.startswith("cuda:"):
        assert torch.device(config.device).index == int(config.device[5:])


@QUICK
@given(st.fixed_dictionaries({}, optional={k: _value(v) for k, v in CONFIG_FIELDS.items()}))
def test_config_dicts_round_trip_or_are_refused_naming_the_field(data):
    _round_trips(Config, data)


SAE_FIELDS = {
    "d": st.integers(-1, 64),
    "latents": st.integers(-1, 256),
    "kind": SAE_KINDS,
    "topk": st.integers(-1, 300),
    "l1": finite,
    "lr": finite,
    "aux_alpha": finite,
    "aux_k": st.integers(-1, 300),
    "dead_after": st.integers(0, 1000),
    "batch": st.integers(0, 4096),
    "steps": st.integers(0, 10**6),
    "schedule": SCHEDULES,
    "seed": st.integers(-1, 2**40),
    "instances": st.integers(0, 8),
    "device": ("cpu", "auto", "cuda:1", "cuda:٣"),
    "dtype": DTYPES,
}


@QUICK
@given(st.fixed_dictionaries({}, optional={k: _value(v) for k, v in SAE_FIELDS.items()}))
def test_sae_config_dicts_round_trip_or_are_refused_naming_the_field(data):
    _round_trips(SAEConfig, data)


def test_a_device_index_must_be_ascii_digits():
    for device in ("cuda:²", "cuda:٣", "cuda:-1", "cuda: 1"):
        with pytest.raises(ConfigError, match="device"):
            Config(device=device)
        with pytest.raises(ConfigError, match="device"):
            SAEConfig(device=device)


# -- the batched optimizers against the plain references --------------------------------------
@FEW
@given(
    instances=st.integers(1, 4),
    shape=st.tuples(st.integers(1, 9), st.integers(1, 6), st.integers(1, 7)),
    rates=st.lists(st.floats(1e-4, 0.3), min_size=4, max_size=4),
    steps=st.integers(1, 6),
    zero_block=st.sampled_from([None, 0, 1, 2]),
    seed=st.integers(0, 2**31 - 1),
    kind=st.sampled_from(["lamb", "adam"]),
)
def test_batched_optimizers_match_the_references(
    instances, shape, rates, steps, zero_block, seed, kind
):
    k, m, out = shape
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(instances, k, m, generator=g, dtype=torch.float64)
    b = torch.randn(instances, k, generator=g, dtype=torch.float64)
    W2 = torch.randn(instances, out, k, generator=g, dtype=torch.float64)
    if zero_block == 1:
        b.zero_()  # a zero weight norm: LAMB's trust ratio is 1
    model = ToyModel.from_weights(W1, b, W2, "relu")
    sizes = ToyModel.sizes(instances, k, m, out)
    blocks = [(sum(sizes[:j]), n) for j, n in enumerate(sizes)]
    lrs = torch.tensor(rates[:instances], dtype=torch.float64)
    opt = (BatchedLamb if kind == "lamb" else BatchedAdam)(model.flat, blocks, instances)
    refs = []
    for i, tensors in enumerate(zip(*model.split())):
        params = [nn.Parameter(t.clone()) for t in tensors]
        make = ReferenceLamb if kind == "lamb" else torch.optim.Adam
        refs.append((params, make(params, lr=float(lrs[i]))))
    for _ in range(steps):
        grad = torch.randn(model.flat.shape, generator=g, dtype=torch.float64)
        if zero_block is not None:
            o, n = blocks[zero_block]
            grad[o : o + n] = 0  # a zero update norm
        opt.step(grad, lrs)
        for i, (params, ref) in enumerate(refs):
            for p, gr in zip(params, (t[i] for t in model.split(grad))):
                p.grad = gr.clone()
            ref.step()
    for i, (params, _) in enumerate(refs):
        for mine, theirs in zip((t[i] for t in model.split()), params):
            torch.testing.assert_close(mine, theirs.detach(), rtol=1e-10, atol=1e-12)


# -- seals: any single changed byte of a stored pair is caught, or changes nothing -----------
@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A small stored summary (with one instance's weights) and what it loads as."""
    folder = tmp_path_factory.mktemp("sealed")
    run = train(preset("tiny", steps=16, instances=2), progress=False)
    save_summary([run], folder, name="S", scale="book", representative=[1])
    return folder, _content(load_summary(folder / "S"))


def _content(summary) -> tuple:
    meta = {k: v for k, v in summary.meta.items() if k != "integrity"}
    arrays = summary.all_arrays()
    return json.dumps(meta, sort_keys=True), {k: arrays[k].tobytes() for k in sorted(arrays)}


@FEW
@given(
    which=st.sampled_from(["S.json", "S.npz"]),
    where=st.floats(0, 1, exclude_max=True),
    change=st.integers(1, 255),
)
def test_a_changed_byte_is_refused_or_changes_nothing(stored, which, where, change):
    folder, original = stored
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("S.json", "S.npz"):
            shutil.copy(folder / name, Path(tmp) / name)
        data = bytearray((folder / which).read_bytes())
        at = int(where * len(data))
        data[at] ^= change
        (Path(tmp) / which).write_bytes(bytes(data))
        try:
            summary = load_summary(Path(tmp) / "S")
        except StoredFileError:
            return
        assume(which == "S.json")  # an .npz change is always refused (its digest)
        assert _content(summary) == original, f"byte {at} of {which} changed silently"


def test_a_seal_refuses_every_byte_of_the_arrays_changed(stored):
    """Exhaustive over the .npz's first and last bytes (the zip's headers and directory)."""
    folder, _ = stored
    data = (folder / "S.npz").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(folder / "S.json", Path(tmp) / "S.json")
        for at in [*range(64), *range(len(data) - 64, len(data))]:
            changed = bytearray(data)
            changed[at] ^= 0x01
            (Path(tmp) / "S.npz").write_bytes(bytes(changed))
            with pytest.raises(StoredFileError, match="does not match"):
                load_summary(Path(tmp) / "S")
    assert np.frombuffer(data[:2], np.uint8).tolist() == [0x50, 0x4B]  # a zip: "PK"
