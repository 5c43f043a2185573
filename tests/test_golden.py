"""Golden numbers: a few small fixed runs must train and measure exactly as they did.

Stored results (``data/``, the book's summaries) depend on training and the metrics giving the
same numbers for the same config. This test trains a handful of small configs and compares
their final losses, monosemanticity and weight statistics with ``tests/golden.json``. A
refactor must leave them unchanged; a change that alters them on purpose must bump
``RESULTS_VERSION`` and regenerate the file::

    python tests/test_golden.py --write

The cases run in float64 where they can (robust to BLAS and thread count) and one in float32
(the dtype stored results use).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from monosem_lib.analysis.metrics import neuron_stats, summarize, variant_options
from monosem_lib.core.config import Config, preset
from monosem_lib.core.training import train
from monosem_lib.version import RESULTS_VERSION

GOLDEN = Path(__file__).with_name("golden.json")
REL, ABS = 1e-4, 1e-5
EVAL_SAMPLES = 2**12


def _cases() -> dict[str, Config]:
    base = preset("tiny", steps=300)
    f64 = base.replace(dtype="float64")
    return {
        "relu_seeds_0_1_float32": base.replace(instances=2),
        "relu_float64": f64.replace(seed=0),
        "gelu": f64.replace(nonlinearity="gelu", seed=1),
        "solu": f64.replace(nonlinearity="solu", lr=0.003, seed=2),
        "abs": f64.replace(task="abs", seed=3),
        "reprojector_paper_schedule": f64.replace(task="reprojector", schedule="paper", seed=4),
        "bias_decay_l1": f64.replace(init_bias=-1.0, bias_decay=1.0, l1=0.01, seed=0),
        "adam_power_law": f64.replace(optimizer="adam", feature_dist="power_law", seed=6),
    }


def _numbers(config: Config) -> list[dict[str, float]]:
    """The numbers recorded for one config, one dict per instance."""
    run = train(config, progress=False)
    paper = summarize(run, eval_samples=EVAL_SAMPLES)
    book = summarize(run, eval_samples=EVAL_SAMPLES, variant="book")
    shares = {
        v: neuron_stats(run.model, run.P, **variant_options(config, v)).share
        for v in ("paper", "book")
    }
    W1, b, _ = run.model.split()
    rows = []
    for i in range(run.instances):
        rows.append(
            {
                "final_loss": paper[i]["final_loss"],
                "train_loss_last_10": float(run.loss_history[-10:, i].double().mean()),
                "mono_per_feature": paper[i]["mono_per_feature"],
                "mono_per_feature_book": book[i]["mono_per_feature"],
                "dead_neurons": paper[i]["dead_neurons"],
                "mean_share": float(shares["paper"][i].double().mean()),
                "mean_share_book": float(shares["book"][i].double().mean()),
                "mean_abs_W1": float(W1[i].double().abs().mean()),
                "sum_b": float(b[i].double().sum()),
            }
        )
    return rows


def compute() -> dict:
    """Every case's numbers, with the RESULTS_VERSION they belong to."""
    torch.set_num_threads(1)
    return {
        "results_version": RESULTS_VERSION,
        "cases": {name: _numbers(c) for name, c in _cases().items()},
    }


def _differences(want: dict, got: dict) -> list[str]:
    out = []
    for name, rows in want["cases"].items():
        if name not in got["cases"]:
            out.append(f"{name}: case missing")
            continue
        for i, (w, g) in enumerate(zip(rows, got["cases"][name])):
            for key, value in w.items():
                if not math.isclose(g[key], value, rel_tol=REL, abs_tol=ABS):
                    out.append(f"{name}[{i}].{key}: stored {value!r}, now {g[key]!r}")
    return out


@pytest.fixture(scope="module")
def current() -> dict:
    threads = torch.get_num_threads()
    try:
        return compute()
    finally:
        torch.set_num_threads(threads)


def test_golden_numbers_are_unchanged(current):
    want = json.loads(GOLDEN.read_text())
    diffs = _differences(want, current)
    if not diffs:
        return
    stored = want["results_version"]
    if stored == RESULTS_VERSION:
        pytest.fail(
            f"training/metric numbers changed while RESULTS_VERSION stayed {RESULTS_VERSION}: "
            "if intended, bump RESULTS_VERSION in monosem_lib/version.py, rerun `make data` / "
            "`make data-paper-cpu`, and regenerate with `python tests/test_golden.py --write`."
            "\n" + "\n".join(diffs)
        )
    pytest.fail(
        f"tests/golden.json holds RESULTS_VERSION {stored} but the code is at {RESULTS_VERSION}: "
        "regenerate it with `python tests/test_golden.py --write`.\n" + "\n".join(diffs)
    )


def test_golden_file_matches_the_results_version():
    want = json.loads(GOLDEN.read_text())
    assert want["results_version"] == RESULTS_VERSION, (
        f"tests/golden.json was written at RESULTS_VERSION {want['results_version']}, the code "
        f"is at {RESULTS_VERSION}: regenerate it with `python tests/test_golden.py --write`"
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_golden.py --write   (regenerates tests/golden.json)")
    GOLDEN.write_text(json.dumps(compute(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} at RESULTS_VERSION {RESULTS_VERSION}")
