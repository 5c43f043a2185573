"""The CLI contract: exact flags, one JSON object with --json, one-line errors."""

import json
import subprocess
import sys

import pytest

from monosem_lib.apps.cli import main

SUMMARY = {
    "final_loss",
    "zero_loss",
    "mono_neurons",
    "mono_per_feature",
    "features_covered",
    "dead_neurons",
    "mean_bias_mono",
    "mean_bias_poly",
}


def _run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_is_one_object_with_the_promised_keys(capsys):
    code, out, err = _run(
        [
            "train",
            "--preset",
            "book",
            "--N",
            "16",
            "--m",
            "8",
            "--k",
            "32",
            "--batch",
            "32",
            "--steps",
            "50",
            "--instances",
            "2",
            "--seed",
            "4",
            "--init-bias",
            "-0.5",
            "--bias-decay",
            "1.0",
            "--l1",
            "0.001",
            "--eps",
            "0.125",
            "--feature-dist",
            "power_law",
            "--task",
            "decoder",
            "--nonlinearity",
            "relu",
            "--lr",
            "0.01",
            "--optimizer",
            "lamb",
            "--schedule",
            "cosine",
            "--device",
            "cpu",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    data = json.loads(out)  # exactly one JSON document
    assert set(data) >= {"config", "train_seconds", "instances"}
    assert data["config"]["N"] == 16 and data["config"]["feature_dist"] == "power_law"
    assert len(data["instances"]) == 2
    assert [r["seed"] for r in data["instances"]] == [4, 5], (
        "--instances I trains seeds seed..seed+I-1"
    )
    for row in data["instances"]:
        assert SUMMARY <= set(row)


@pytest.mark.oldest
@pytest.mark.parametrize(
    "args,flag",
    [
        (["--eps", "1.5"], "--eps"),
        (["--eps", "0"], "--eps"),
        (["--k", "0"], "--k"),
        (["--N", "-4"], "--N"),
        (["--batch", "2.5"], "--batch"),
        (["--lr", "nan"], "--lr"),
        (["--lr", "inf"], "--lr"),
        (["--task", "sort"], "--task"),
        (["--nonlinearity", "tanh"], "--nonlinearity"),
        (["--feature-dist", "zipf"], "--feature-dist"),
        (["--optimizer", "sgd"], "--optimizer"),
        (["--preset", "huge"], "--preset"),
        (["--bias-decay", "-0.1"], "--bias-decay"),
        (["--l1", "-1"], "--l1"),
        (["--steps", "many"], "--steps"),
        (["--m", "100"], "--m"),
        (["--instances", "0"], "--instances"),
        (["--device", "tpu"], "--device"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_bad_values_exit_nonzero_with_one_line_naming_the_flag(args, flag, capsys):
    code, out, err = _run(["train", *args], capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert flag in lines[0] and "Traceback" not in err


def test_sweep_and_interpret_round_trip(tmp_path, capsys):
    code, out, err = _run(
        [
            "sweep",
            "LR1",
            "--preset",
            "book",
            "--seeds",
            "1",
            "--steps",
            "20",
            "--out",
            str(tmp_path / "lr1"),
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["sweep"]["name"] == "LR1" and len(data["instances"]) == 6
    assert [r["lr"] for r in data["instances"]] == [0.001, 0.003, 0.005, 0.007, 0.01, 0.03]
    code, out, err = _run(["interpret", str(tmp_path / "lr1"), "--json"], capsys)
    assert code == 0, err
    report = json.loads(out, parse_constant=lambda c: pytest.fail(f"--json printed {c}"))
    assert sum(report["counts"].values()) == 256
    # 20 steps do not fit the task: no verdict holds, and each says so with its number and threshold
    assert (
        report["fits_task"]["holds"] is False
        and report["fits_task"]["value"] > report["fits_task"]["threshold"]
    )
    assert list(report["sets"]) == ["residual_block", "always_on"]
    for s in report["sets"].values():
        for name, v in s["verdicts"].items():
            assert v["holds"] is not True, name
            assert {"value", "threshold", "comparison"} <= set(v)
    assert set(report["ablations"]) == set(report["ablation_counts"])
    code, out, _ = _run(["interpret", str(tmp_path / "lr1"), "--instance", "5"], capsys)
    assert code == 0 and "Neuron classes" in out and "monosemantic" in out
    code, _, err = _run(["interpret", str(tmp_path / "lr1"), "--instance", "9"], capsys)
    assert code == 2 and "--instance" in err


def test_sweep_with_several_widths_saves_one_run_per_width(tmp_path, capsys):
    code, out, err = _run(
        ["sweep", "K0", "--seeds", "1", "--steps", "5", "--out", str(tmp_path / "k"), "--json"],
        capsys,
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == sorted(
        f"k={k}" for k in (16, 32, 64, 128, 256, 512)
    )


def test_out_never_overwrites_silently(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    code, out, err = _run(
        ["train", "--preset", "tiny", "--steps", "5", "--out", str(tmp_path)], capsys
    )
    assert code == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.oldest
def test_runtime_failures_are_one_line_too(capsys):
    code, out, err = _run(
        ["train", "--preset", "tiny", "--steps", "20", "--init-bias", "1e30"], capsys
    )
    assert code == 1
    assert (
        len(err.strip().splitlines()) == 1
        and "diverged" in err
        and "step 0" in err
        and "instance 0" in err
    )


def test_module_entry_point_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "monosem_lib", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "monosem_lib" in proc.stdout


def test_bench_reports_every_shape_against_the_naive_trainer(capsys):
    code, out, err = _run(["bench", "--quick", "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["matmul_peak_gflops"] > 0
    names = [r["name"] for r in data["rows"]]
    assert names == [
        "paper shape (batch 1024)",
        "book shape, one model",
        "book shape, 9-model grid",
    ]
    for r in data["rows"]:
        assert r["speedup"] > 0 and 0 < r["fraction_of_peak"] < 1.5 and r["target"] is not None
    assert 0 < data["paper_shape_peak"]["fraction"] < 1.5
    assert data["paper_shape_peak"]["target"] == 0.75
    assert data["rounds"] == 1, "--quick runs one round"
    floor = data["paper_shape_floor"]
    paper = data["rows"][0]
    assert floor["gemm_ms_per_step"] > 0
    assert floor["speedup_bound"] == pytest.approx(
        paper["naive_ms_per_step"] / floor["gemm_ms_per_step"]
    )
    assert paper["target_kind"] == "over_floor" and floor["target"] == paper["target"] == 1.10
    assert floor["library_over_floor"] == pytest.approx(
        paper["library_ms_per_step"] / floor["gemm_ms_per_step"]
    )
    assert floor["met"] == (floor["library_over_floor"] <= 1.10) == paper["met"]
    scaling = data["instance_scaling"]
    assert set(scaling["ms_per_instance_step"]) == {"1", "2", "4"} and scaling["growth"] > 0
    live = data["live_retrain"]  # the bias explorer's retrain, control to final image
    assert live["median_seconds"] > 0 and live["redraws"][0] >= 3 and live["target_seconds"] == 4.0


@pytest.mark.oldest
def test_sweep_writes_a_summary_and_splits_batches(tmp_path, capsys):
    from monosem_lib.store.files import load_summary

    code, out, err = _run(
        [
            "sweep",
            "K0",
            "--seeds",
            "1",
            "--steps",
            "10",
            "--max-instances",
            "3",
            "--summary",
            str(tmp_path / "data"),
            "--representative",
            "0",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    s = load_summary(tmp_path / "data" / "K0.json")
    assert len(s.configs) == 6 and s.meta["scale"] == "book" and s.meta["instances"][0]["weights"]
    code, _, err = _run(
        ["sweep", "K0", "--seeds", "1", "--steps", "10", "--summary", str(tmp_path / "data")],
        capsys,
    )
    assert code == 2 and "--summary" in err and "--overwrite" in err
    # --resume skips a current summary, and retrains one whose configs differ.
    code, out, _ = _run(
        [
            "sweep",
            "K0",
            "--seeds",
            "1",
            "--steps",
            "10",
            "--summary",
            str(tmp_path / "data"),
            "--resume",
            "--json",
        ],
        capsys,
    )
    assert code == 0 and "skipped" in json.loads(out)
    code, out, _ = _run(
        [
            "sweep",
            "K0",
            "--seeds",
            "1",
            "--steps",
            "12",
            "--summary",
            str(tmp_path / "data"),
            "--resume",
            "--json",
        ],
        capsys,
    )
    assert code == 0 and "skipped" not in json.loads(out)
    assert all(c.steps == 12 for c in load_summary(tmp_path / "data" / "K0.json").configs)


def test_sweep_in_shards_merges_into_the_unsharded_summary(tmp_path):
    """`sweep --shard i/n` trains disjoint parts; `merge` writes the same file an unsharded
    run writes: identical configs, metrics and arrays (representative weights included)."""
    import numpy as np

    common = ["sweep", "LR3", "--steps", "300", "--seeds", "2", "--representative", "3"]
    assert main([*common, "--summary", str(tmp_path / "full")]) == 0
    for i in range(3):
        assert main([*common, "--summary", str(tmp_path / "parts"), "--shard", f"{i}/3"]) == 0
    parts = sorted(str(p) for p in (tmp_path / "parts").glob("LR3.part-*.json"))
    assert len(parts) == 3
    assert main(["merge", *parts, "--summary", str(tmp_path / "merged")]) == 0
    full, merged = (json.loads((tmp_path / d / "LR3.json").read_text()) for d in ("full", "merged"))
    assert "shard" not in merged
    for a, b in zip(full["instances"], merged["instances"], strict=True):
        assert a["config"] == b["config"] and a["weights"] == b["weights"]
        assert a["metrics"] == b["metrics"], (a["config"]["lr"], a["metrics"], b["metrics"])
    with np.load(tmp_path / "full" / "LR3.npz") as A, np.load(tmp_path / "merged" / "LR3.npz") as B:
        assert sorted(A.files) == sorted(B.files)
        for key in A.files:
            np.testing.assert_array_equal(A[key], B[key], err_msg=key)


@pytest.mark.oldest
def test_merge_names_missing_or_foreign_parts(tmp_path, capsys):
    common = ["sweep", "LR1", "--steps", "20", "--seeds", "1", "--summary", str(tmp_path)]
    assert main([*common, "--shard", "0/2"]) == 0
    assert main(["merge", str(tmp_path / "LR1.part-0-of-2.json"), "--summary", str(tmp_path)]) == 2
    assert "need shards 0/2 .. 1/2 exactly once each" in capsys.readouterr().err
    assert main([*common, "--shard", "2/2"]) == 2
    assert "needs 0 <= I < N" in capsys.readouterr().err


@pytest.mark.oldest
def test_a_merge_of_shards_loads_as_the_unsharded_summary(tmp_path):
    """The quick twin of the shards test above (for the oldest stage): two shards of a short
    sweep merge into a summary that loads with the unsharded one's configs and arrays."""
    from monosem_lib.store.files import load_summary

    common = ["sweep", "LR1", "--steps", "20", "--seeds", "1", "--values", "0.003,0.01,0.03"]
    assert main([*common, "--representative", "1", "--summary", str(tmp_path / "full")]) == 0
    for i in range(2):
        shard = ["--shard", f"{i}/2", "--representative", "1"]
        assert main([*common, *shard, "--summary", str(tmp_path / "parts")]) == 0
    parts = sorted(str(p) for p in (tmp_path / "parts").glob("LR1.part-*.json"))
    assert main(["merge", *parts, "--summary", str(tmp_path / "merged")]) == 0
    full, merged = (load_summary(tmp_path / d / "LR1.json") for d in ("full", "merged"))
    assert merged.configs == full.configs and "shard" not in merged.meta
    assert sorted(merged.all_arrays()) == sorted(full.all_arrays())


def test_paper_gpu_plans_trains_and_resumes_on_a_tiny_budget(tmp_path, capsys):
    """The GPU command's whole path on the CPU: time the device, keep what fits (one model at
    a budget far below one pass, whatever the machine's speed), store a compact summary that
    is current, and resume from the stored plan without retraining."""
    from monosem_lib.paper import reproduction as rp
    from monosem_lib.store.results import load_results

    args = ["paper-gpu", "--device", "cpu", "--steps", "2", "--per-pass", "1"]
    args += ["--budget-seconds", "1e-6", "--summary", str(tmp_path), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert [tuple(m) for m in first["plan"]["models"]] == [("LR1", 0.003)]
    assert (
        first["batches"] == {"LR1": first["batches"]["LR1"]}
        and "trained" in first["batches"]["LR1"]
    )
    stored = load_results(tmp_path / "LR1.json")
    assert [c.lr for c in stored.configs] == [0.003] and stored.configs[0].batch == 8192
    assert rp.is_current(stored), "the summary records what it was made with"
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["batches"] == {"LR1": "current"} and again["plan"] == first["plan"]


@pytest.mark.parametrize(
    "budget, per_pass, expected",
    [(0.1, 1, 1), (0.85, 1, 2), (0.85, 2, 4), (1.25, 1, 3), (100.0, 2, None)],
)
def test_gpu_plan_keeps_whole_passes_that_fit(monkeypatch, budget, per_pass, expected):
    """The plan's arithmetic with the device's speed fixed (200 ms a step, 2 steps: 0.4 s a
    pass): whole passes in the budget, at least one, never more models than PRIORITY."""
    from monosem_lib.paper import gpu_plan

    monkeypatch.setattr(gpu_plan, "measure", lambda *a, **k: 200.0)
    plan = gpu_plan.make_plan("cpu", budget, steps=2, per_pass=per_pass)
    n = len(gpu_plan.PRIORITY) if expected is None else expected
    assert plan.models == gpu_plan.PRIORITY[:n]
    assert plan.seconds == pytest.approx(-(-n // per_pass) * 0.4)


def test_paper_gpu_without_a_gpu_is_one_clear_line(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert main(["paper-gpu", "--device", "cuda", "--summary", "/nonexistent"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--device" in err and "no CUDA device" in err
