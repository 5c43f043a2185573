"""The chapter helpers the notebooks call (``experiments``) and the figures they draw
(``plots``), on tiny runs: shapes, the numbers the chapters assert on, and figures that show
once, as PNG, outside pyplot."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from monosem_lib import book  # noqa: E402
from monosem_lib.core.config import preset  # noqa: E402
from monosem_lib.core.training import train  # noqa: E402
from monosem_lib.store.results import Results

TINY = preset("live", steps=300, batch=128)


@pytest.fixture(scope="module")
def pair():
    """Two tiny models that differ in learning rate, as a Run and its Results."""
    run = train([TINY, TINY.replace(lr=3 * TINY.lr)], progress=False)
    return run, Results.from_run(run, scale="live")


def _is_png_figure(fig) -> bool:
    return isinstance(fig, book.BookFigure) and fig._repr_png_().startswith(b"\x89PNG")


def test_figures_show_as_png_and_stay_out_of_pyplot(pair):
    run, results = pair
    before = plt.get_fignums()
    labels = [f"lr {c.lr}" for c in run.configs]
    world = book.world_sample(TINY)
    figs = [
        book.sparsity_figure(world),
        book.interference_figure(world),
        book.loss_curves(run, labels, zero_loss=1.0),
        book.heatmap_row([results.stats(i).sfa[0] for i in range(2)], labels),
        book.results_sweep({"tiny": results}, "lr"),
        book.bias_figure(results),
    ]
    assert all(_is_png_figure(f) for f in figs)
    assert plt.get_fignums() == before  # nothing for plt.show() to draw a second time


def test_seed_band_takes_ragged_seeds():
    fig, ax = book.subplots()
    line = book.seed_band(ax, [1, 2], [[0.1, 0.3], [0.5]])
    assert np.allclose(line.get_ydata(), [0.2, 0.5])
    assert len(ax.collections[0].get_offsets()) == 3


def test_world_numbers_match_the_world():
    w = book.world_sample(TINY)
    n = book.world_numbers(w)
    assert w.overlap.shape == (TINY.N, TINY.N) and float(w.overlap.diagonal().abs().max()) == 0
    assert n.expected_active == TINY.N * TINY.eps
    assert abs(n.mean_active - n.expected_active) < 1.0
    assert np.isclose(w.binomial.sum(), 1.0, atol=1e-3)


def test_threshold_counts_fall_as_the_threshold_tightens(pair):
    run, _ = pair
    from monosem_lib.analysis.metrics import neuron_stats

    stats = neuron_stats(run.model, run.P)
    counts = book.threshold_counts(stats, [0.5, 0.9, 0.999], ["a", "b"])
    assert list(counts.columns) == ["a", "b"] and list(counts.index) == [0.5, 0.9, 0.999]
    assert (counts.diff().iloc[1:] <= 0).all().all()
    kinds = [kind for _, kind, _ in book.example_neurons(stats)]
    assert kinds == ["monosemantic", "polysemantic", "dead"]


def test_stays_ahead():
    counts = pd.DataFrame({"a": [5, 4, 3], "b": [6, 5, 4]}, index=[0.5, 0.9, 0.99])
    assert book.stays_ahead(counts, 0.5)
    counts.loc[0.99, "b"] = 2
    assert not book.stays_ahead(counts, 0.5) and book.stays_ahead(counts, 0.9) is False


def test_seed_means_and_coverage(pair):
    _, results = pair
    table = book.seed_means(results, ("lr",))
    assert table.shape == (2, 6)  # loss, mono/N, dead: mean and std
    cov = book.coverage(results, 0)
    f = cov.features
    assert len(cov.uncovered) == int((f.mono == 0).sum()) == len(cov.uncovered_table())
    assert cov.summary()["features covered"] == int((f.mono > 0).sum())


def test_claim_tables():
    from monosem_lib import claims

    claim = claims.Claim3(
        {"mono_per_feature": {0.01: (0.3, 1.6)}, "final_loss": {0.01: (0.09, 0.08)}},
        (),
    )
    table = book.claim3_table(claim)
    assert table.loc[0.01, "mono/N engineered"] == 1.6 and table.loc[0.01, "loss baseline"] == 0.09


def test_rules_and_departures_cover_every_batch():
    from monosem_lib.paper.table1 import BOOK_RULES, TABLE1

    assert len(book.rules_table()) == len(BOOK_RULES)
    deps = book.departures_table()
    assert list(deps.index) == list(TABLE1) and "steps" in deps.columns


def test_tables_print_numbers_one_way():
    from monosem_lib.book.text import sig, table_number

    got = [table_number(x) for x in (251.0, 8192.0, 0.099878, 1.0043, 0.26, 1234.5, None)]
    assert got == ["251", "8192", "0.0999", "1.00", "0.260", "1234", "–"]
    assert table_number(float("nan")) == "–" and sig(8192.0) == "8192" and sig(0.03923) == "0.039"
    assert sig(160.33) == "160" and sig(1234.5) == "1200" and sig(-160.33) == "-160"
    assert sig(99.7) == "100" and sig(12.34, 3) == "12.3" and sig(12.0) == "12"


def test_every_cell_of_a_table_prints_one_way():
    import numpy as np
    import pandas as pd

    from monosem_lib.book.text import book_table

    df = pd.DataFrame(
        {
            "mono": [0.099878, 251.0, np.nan],
            "holds": [True, np.False_, None],
            "x": ["a", np.nan, 3],
        },
        index=pd.Index([0.003, 0.01, 0.03], name="lr"),
    )
    out = book_table(df)
    assert out.to_dict("list") == {
        "mono": ["0.0999", "251", "–"],
        "holds": ["✓", "✗", "–"],
        "x": ["a", "–", "3"],
    }
    assert list(out.index) == ["0.003", "0.01", "0.03"] and out.index.name == "lr"
    series = book_table(pd.Series({"steps": 8192.0, "loss": 0.0392331}, name="LR3"))
    assert series["LR3"].tolist() == ["8192", "0.0392"]


def test_tables_show_display_names_grouped_digits_and_no_row_numbers():
    import pandas as pd

    from monosem_lib.book.text import _table_html, book_table, display_name, table_cell

    assert display_name("final_loss") == "loss" and display_name("mono_per_feature") == "mono/N"
    assert display_name("deviation_on") == "deviation when on"
    assert display_name("some_new_column") == "some new column" and display_name("LR3") == "LR3"
    assert table_cell(1048576) == "1,048,576" and table_cell(8192) == "8192"
    assert table_cell(("LR3.json", 12)) == "LR3.json, 12"
    df = pd.DataFrame({"final_loss": [0.1, 0.2], "deviation_on": [1.0, 2.0]})
    assert list(book_table(df).columns) == ["loss", "deviation when on"]
    html = _table_html(df)
    assert "final_loss" not in html and "<th>0</th>" not in html and "deviation when on" in html
    indexed = _table_html(df.set_index(pd.Index(["a", "b"], name="run")))
    assert "<th>a</th>" in indexed


def test_seed_means_carry_their_spread_into_tables():
    import pandas as pd

    from monosem_lib.book.tables import _object_frame
    from monosem_lib.book.text import Spread, table_cell

    s = Spread([0.3, 0.35, 0.4])
    assert abs(s - 0.35) < 1e-12 and s.n == 3 and abs(s.sd - 0.05) < 1e-12
    assert table_cell(s) == "0.350 ± 0.05" and table_cell(Spread([0.3])) == "0.300"
    assert Spread([1.0, None, float("nan"), 3.0]).n == 2
    frame = _object_frame({"a": {"x": s}})
    assert isinstance(frame.loc["a", "x"], Spread) and frame.loc["a", "x"] > 0.3
    assert isinstance(pd.Series({1: s}, dtype=object).iloc[0], Spread)
