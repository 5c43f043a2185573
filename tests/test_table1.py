"""Every field of every row of the paper's Table 1, held against a copy of the paper's table.

The copy below restates ../shared/notes/paper-table1.md (Table 1 of arXiv:2211.09169 as
publicly transcribed); "Variable" marks the swept knob. A changed value in
``monosem_lib.paper.table1`` fails here.
"""

import pytest

from monosem_lib.paper.table1 import TABLE1, sweep_configs

PAPER_TABLE1 = """
| LR1 | decoder | ReLU | uniform | 512 | 64 | 1024 | 1/64 | Variable | 0 | 0 | 0 |
| LR2 | decoder | ReLU | power-law | 512 | 64 | 1024 | 1/64 | Variable | 0 | 0 | 0 |
| LR3 | decoder | ReLU | uniform | 512 | 64 | 1024 | 1/64 | Variable | 0.03 | -1 | 0 |
| B1 | decoder | ReLU | uniform | 512 | 64 | 1024 | 1/16 | 0.003 | 0.03 | Variable | 0 |
| B2 | decoder | ReLU | uniform | 512 | 64 | 1024 | 1/32 | 0.003 | 0.003 | Variable | 0 |
| B3 | decoder | ReLU | uniform | 512 | 64 | 1024 | 1/64 | 0.003 | 0.003 | Variable | 0 |
| B4 | decoder | ReLU | uniform | 512 | 64 | 1024 | 1/128 | 0.003 | 0.003 | Variable | 0 |
| B5 | decoder | ReLU | uniform | 512 | 64 | 1024 | 1/256 | 0.003 | 0.003 | Variable | 0 |
| LR4 | decoder | ReLU | power-law | 512 | 64 | 1024 | 1/64 | Variable | 0.03 | -1 | 0 |
| G1 | decoder | GeLU | uniform | 512 | 64 | 1024 | 1/64 | Variable | 0.03 | Variable | 0 |
| E1 | decoder | ReLU | uniform | 512 | 64 | 1024 | Variable | 0.003 | 0.03 | -1 | 0 |
| E2 | decoder | ReLU | uniform | 512 | 64 | 1024 | Variable | 0.003 | 0.01 | -1 | 0 |
| E3 | decoder | ReLU | uniform | 512 | 64 | 1024 | Variable | 0.003 | 0.003 | -1 | 0 |
| E4 | decoder | ReLU | uniform | 512 | 64 | 1024 | Variable | 0.003 | 0.001 | -1 | 0 |
| K0 | decoder | ReLU | uniform | 512 | 64 | Variable | 1/64 | 0.007 | 0 | 0 | 0 |
| K1 | decoder | ReLU | uniform | 512 | 64 | Variable | 1/64 | 0.007 | 0.03 | -1 | 0 |
| K2 | decoder | ReLU | power-law | 512 | 64 | Variable | 1/64 | 0.007 | 0.03 | -1 | 0 |
| RG1 | decoder | ReLU | uniform | 512 | 64 | 1024 | 1/64 | 0.005 | 0.03 | -1 | Variable |
| RP1 | re-projector | ReLU | uniform | 512 | 64 | 1024 | 1/64 | Variable | 0.03 | -1 | 0 |
| LR5 | abs | ReLU | uniform | 512 | 64 | 2048 | 1/64 | Variable | 0.03 | -1 | 0 |
| D1 | abs | ReLU | uniform | 512 | 64 | 2048 | 1/64 | 0.007 | Variable | -1 | 0 |
"""
COLUMNS = (
    "task",
    "nonlinearity",
    "feature_dist",
    "N",
    "m",
    "k",
    "eps",
    "lr",
    "bias_decay",
    "init_bias",
    "l1",
)
WORDS = {"re-projector": "reprojector", "ReLU": "relu", "GeLU": "gelu", "power-law": "power_law"}
# Swept values in the authors' code and data-file names.
SWEPT = {
    "lr": [0.001, 0.003, 0.005, 0.007, 0.01, 0.03],
    "init_bias": [round(-2 + 0.3 * i, 10) for i in range(11)],
    "eps": [2 ** -(1 + 0.4 * i) for i in range(11)],
    "k": [16, 32, 64, 128, 256, 512, 1024],
    "l1": [10.0**-i for i in range(1, 8)],
    "bias_decay": [10.0**-i for i in range(1, 8)],
}
GELU_LRS = [0.001, 0.005, 0.01]


def _value(text: str):
    if text in WORDS or text in ("decoder", "abs", "uniform"):
        return WORDS.get(text, text)
    if "/" in text:
        num, den = text.split("/")
        return int(num) / int(den)
    return float(text)


def _rows() -> dict[str, dict]:
    rows = {}
    for line in PAPER_TABLE1.strip().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(COLUMNS, cells[1:]))
    return rows


def test_the_library_has_exactly_the_papers_batches():
    assert list(TABLE1) == list(_rows())


@pytest.mark.parametrize("name", list(_rows()))
def test_every_field_of_every_row(name):
    row, spec = _rows()[name], TABLE1[name]
    configs = sweep_configs(name, "paper")
    swept = tuple(f for f in COLUMNS if row[f] == "Variable")
    assert spec.swept == swept, f"{name}: swept {spec.swept}, the paper sweeps {swept}"
    for f in COLUMNS:
        seen = sorted({getattr(c, f) for c in configs}, key=str)
        if f in swept:
            want = GELU_LRS if (name, f) == ("G1", "lr") else SWEPT[f]
            assert sorted(seen) == sorted(want), f"{name}: {f} takes {seen}, the paper {want}"
        else:
            assert seen == [_value(row[f])], f"{name}: {f} is {seen}, the paper's is {row[f]}"
    assert len(configs) == len(spec.points("paper")) and all(c.instances == 1 for c in configs)


def test_a_changed_value_fails(monkeypatch):
    import dataclasses

    bad = dataclasses.replace(TABLE1["B2"], row={**TABLE1["B2"].row, "bias_decay": 0.03})
    monkeypatch.setitem(TABLE1, "B2", bad)
    with pytest.raises(AssertionError, match="bias_decay"):
        test_every_field_of_every_row("B2")
