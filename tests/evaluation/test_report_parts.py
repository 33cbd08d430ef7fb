"""The report parts: CRM KPIs worked out by hand, the transition table, the HTML report, the figures.

Orders of the KPI tests (amount = quantity * unit_price; Q1-Q3 = the quarters of 2024)

    C5  O10  2023-11-20  15                  (before start: C5 is not new in Q1)
    C1  O1   2024-01-10  2 x 10 + 1 x 5 = 25 (Q1)
    C5  O11  2024-01-20  35                  (Q1)
    C4  R2   2024-02-01  -1 x 30, return     (return-only order: not an order)
    G   O12  2024-02-14  999, guest          (ignored)
    C1  O2   2024-02-20  40                  (Q1, C1's second order in Q1)
    C1  R1   2024-02-25  -1 x 40, return     (ignored)
    C2  O5   2024-03-01  100 and a -20 return line in the same order (value 100)
    C1  O3   2024-05-05  30                  (Q2)
    C3  O7   2024-04-15  20                  (Q2, C3's first order)
    C3  O8   2024-06-01  20                  (Q2)
    C4  O9   2024-07-07  50                  (Q3, C4's first order)
    C1  O4   2024-08-01  10                  (Q3)
    C2  O6   2024-09-09  60                  (Q3: C2 skipped Q2, reactivated)
    C5  O13  2024-10-20  70                  (Q4: partial period, dropped with end = 2024-11-15)
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from evaluation import figures  # noqa: E402
from evaluation.html_report import HtmlReport  # noqa: E402
from evaluation.kpis import KPI_COLUMNS, crm_kpis  # noqa: E402

NAN = float("nan")
ROWS = [
    ("O10", "C5", "P1", 1.0, 15.0, "2023-11-20 10:00", False),
    ("O1", "C1", "P1", 2.0, 10.0, "2024-01-10 09:00", False),
    ("O1", "C1", "P2", 1.0, 5.0, "2024-01-10 09:00", False),
    ("O11", "C5", "P3", 1.0, 35.0, "2024-01-20 12:00", False),
    ("R2", "C4", "P3", -1.0, 30.0, "2024-02-01 12:00", True),
    ("O12", None, "P4", 1.0, 999.0, "2024-02-14 12:00", False),
    ("O2", "C1", "P4", 1.0, 40.0, "2024-02-20 12:00", False),
    ("R1", "C1", "P4", -1.0, 40.0, "2024-02-25 12:00", True),
    ("O5", "C2", "P5", 1.0, 100.0, "2024-03-01 12:00", False),
    ("O5", "C2", "P2", -1.0, 20.0, "2024-03-01 12:00", True),
    ("O3", "C1", "P1", 1.0, 30.0, "2024-05-05 12:00", False),
    ("O7", "C3", "P2", 1.0, 20.0, "2024-04-15 12:00", False),
    ("O8", "C3", "P2", 1.0, 20.0, "2024-06-01 12:00", False),
    ("O9", "C4", "P3", 1.0, 50.0, "2024-07-07 12:00", False),
    ("O4", "C1", "P1", 1.0, 10.0, "2024-08-01 12:00", False),
    ("O6", "C2", "P5", 1.0, 60.0, "2024-09-09 12:00", False),
    ("O13", "C5", "P5", 1.0, 70.0, "2024-10-20 12:00", False),
]
ACTIVE_WARNING = "active customers down 33% vs previous period"
REPEAT_WARNING = "repeat-purchase rate down 50.0 pts vs previous period"
EXPECTED = pd.DataFrame(
    {
        "period_start": pd.to_datetime(["2024-01-01", "2024-04-01", "2024-07-01"], utc=True),
        "period_end": pd.to_datetime(["2024-04-01", "2024-07-01", "2024-10-01"], utc=True),
        "active_customers": [3, 2, 3],  # {C1, C2, C5}, {C1, C3}, {C1, C2, C4}
        "orders": [4, 3, 3],
        "revenue": [200.0, 70.0, 120.0],
        "new_customers": [2, 1, 1],  # C1 + C2, C3, C4
        "repeat_customers": [1, 1, 2],  # C5, C1, C1 + C2
        "reactivated_customers": [0, 0, 1],  # C2 in Q3
        "churned_customers": [NAN, 2.0, 1.0],  # Q4 2023 not observed; C2 + C5; C3
        "repeat_purchase_rate": [1 / 3, 1 / 2, 0.0],  # C1 in Q1, C3 in Q2
        "top20_revenue_share": [100 / 200, 40 / 70, 60 / 120],  # ceil(0.2 * n) = 1 customer each time
        "avg_order_value": [50.0, 70 / 3, 40.0],
        "warning": ["", ACTIVE_WARNING, REPEAT_WARNING],
    }
)
EXPECTED["period_start"] = EXPECTED["period_start"].astype("datetime64[us, UTC]")
EXPECTED["period_end"] = EXPECTED["period_end"].astype("datetime64[us, UTC]")


@pytest.fixture
def orders(make_orders) -> pd.DataFrame:
    """The KPI test orders above as a canonical orders table."""
    return make_orders(ROWS)


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every figure a test left open."""
    yield
    plt.close("all")


def test_crm_kpis_by_hand(orders):
    kpis = crm_kpis(orders, "2024-01-01", "2024-11-15")
    assert list(kpis.columns) == KPI_COLUMNS
    pd.testing.assert_frame_equal(kpis, EXPECTED, check_exact=False, rtol=1e-12)


def test_crm_kpis_partial_start_and_observed_previous_period(orders):
    # start inside Q1: Q1 is partial and dropped; Q1 is observed (data from 2023-11-20), so Q2 has churn
    kpis = crm_kpis(orders, "2024-02-10", "2024-10-01")
    expected = EXPECTED.iloc[1:].reset_index(drop=True)
    expected.loc[0, "warning"] = ""  # the first row never warns
    pd.testing.assert_frame_equal(kpis, expected, check_exact=False, rtol=1e-12)


def test_crm_kpis_warning_thresholds(orders):
    kpis = crm_kpis(orders, "2024-01-01", "2024-10-01", active_drop_warn=0.34, repeat_rate_drop_warn=0.5)
    assert kpis["warning"].tolist() == ["", "", ""]  # 33% < 34%; exactly 50 points is not "more than"
    kpis = crm_kpis(orders, "2024-01-01", "2024-10-01", active_drop_warn=0.33, repeat_rate_drop_warn=0.49)
    assert kpis["warning"].tolist() == ["", ACTIVE_WARNING, REPEAT_WARNING]


def test_crm_kpis_validation(orders):
    with pytest.raises(ValueError, match=r"is_return.*ordered_at|ordered_at.*is_return"):
        crm_kpis(orders.drop(columns=["ordered_at", "is_return"]), "2024-01-01", "2024-10-01")
    with pytest.raises(ValueError, match="before"):
        crm_kpis(orders, "2024-10-01", "2024-10-01")
    empty = crm_kpis(orders, "2024-01-05", "2024-03-01")  # no complete quarter
    assert list(empty.columns) == KPI_COLUMNS and empty.empty


def test_transition_table_exact():
    before = pd.Series(["new", "new", "new", "repeat", "repeat", "odd"])
    after = pd.Series(["repeat", "repeat", "churned", "repeat", "churned", "new"])
    t = figures.transition_table(before, after, order=["new", "repeat", "loyal", "churned"])
    labels = ["new", "repeat", "loyal", "churned", "odd"]
    expected = pd.DataFrame(
        [[0.0, 2 / 3, 0.0, 1 / 3, 0.0],
         [0.0, 0.5, 0.0, 0.5, 0.0],
         [NAN] * 5,  # "loyal" is absent: an empty row
         [NAN] * 5,  # nobody was "churned" before
         [1.0, 0.0, 0.0, 0.0, 0.0]],  # "odd" is not in order: appended
        index=pd.Index(labels, name="before"), columns=pd.Index(labels, name="after"))
    pd.testing.assert_frame_equal(t, expected, check_index_type=False, check_column_type=False)
    fig = figures.transition_matrix(before, after, "movement", order=["new", "repeat", "loyal", "churned"])
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # heat map + colour bar
    assert len(fig.axes[0].texts) == 15  # three observed rows of five annotated cells


def test_html_report(tmp_path):
    rep = HtmlReport("Evaluation <1>", "sub & title")
    rep.add_heading("Set-up")
    rep.add_paragraph("a < b")
    rep.add_kv({"data": "orders <2024>"})
    rep.add_heading("Results")
    df = pd.DataFrame({"name<x>": ["<script>alert(1)</script>", "ok"], "value": [0.123456789, NAN],
                       "n": [12, 3], "verdict": ["better", "no difference"]})
    rep.add_table(df, caption="numbers")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    rep.add_figure(fig, "a line")
    assert not plt.fignum_exists(fig.number)  # closed once rendered

    out = tmp_path / "deep" / "report.html"
    assert rep.write(out) == out
    text = out.read_text(encoding="utf-8")
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]  # no temp file left
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>" not in text
    assert "name&lt;x&gt;" in text and "Evaluation &lt;1&gt;" in text and "sub &amp; title" in text
    assert "<td class=\"num\">0.1235</td>" in text and "<td class=\"num\">–</td>" in text
    assert "<td>no difference</td>" in text
    assert "data:image/png;base64," in text
    assert '<a href="#section-1">Set-up</a>' in text and '<a href="#section-2">Results</a>' in text
    assert '<h2 id="section-2">Results</h2>' in text
    assert "Generated at" in text and "UTC" in text


def test_metric_by_cutoff_skips_nan_scorers():
    table = pd.DataFrame({
        "cutoff": ["2024-01-01", "2024-02-01", "2024-01-01", "2024-02-01", "2024-01-01", "2024-02-01"],
        "scorer": ["model", "model", "recency", "recency", "bgnbd", "bgnbd"],
        "brier": [0.2, 0.19, NAN, NAN, 0.25, NAN],
    })
    fig = figures.metric_by_cutoff(table, "brier")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["model", "bgnbd"]
    assert len(lines[1].get_xdata()) == 1
    assert fig.axes[0].get_ylabel() == "brier"


def test_predicted_vs_actual_by_group():
    freq = np.array([1, 1, 2, 4, 5, 12, np.nan])
    actual = np.arange(7, dtype=float)
    fig = figures.predicted_vs_actual_by_group(actual, {"model": actual + 1, "run_rate": actual * 2}, freq)
    ax = fig.axes[0]
    assert len(fig.axes) == 1
    assert len(ax.patches) == 5 * 3  # groups 0, 1, 2, 4-5, 11+ x (actual, model, run_rate)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0\n(n=1)", "1\n(n=2)", "2\n(n=1)", "4-5\n(n=2)",
                                                           "11+\n(n=1)"]
    assert ax.patches[1].get_height() == pytest.approx(0.5)  # mean actual of the two customers in group "1"


def test_segment_sizes():
    fig = figures.segment_sizes(pd.Series(["a", "b", "b", "c", "b", "a"]), "segments")
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and len(ax.patches) == 3
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "a", "b"]  # largest on top
    assert sorted(t.get_text() for t in ax.texts) == ["1 (16.7%)", "2 (33.3%)", "3 (50.0%)"]


def test_kpi_trends(orders):
    fig = figures.kpi_trends(crm_kpis(orders, "2024-01-01", "2024-10-01"))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert len(fig.axes[0].get_lines()) == 5 and len(fig.axes[1].get_lines()) == 2
    assert len(fig.axes[2].patches) == 3
    assert math.isnan(fig.axes[0].get_lines()[4].get_ydata()[0])  # churned: NaN in the first quarter


def test_crm_kpis_equal_a_set_based_reference_on_a_random_shop():
    """Monthly KPIs of 300 random orders (guests, returns, orders of several lines) against the definitions
    written with Python sets of customer ids."""
    rng = np.random.default_rng(3)
    n = 300
    order = rng.integers(0, 120, n)
    cust = np.array([None if o % 11 == 0 else f"C{o % 23}" for o in order], dtype=object)
    day = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 330, 120), unit="D")
    lines = pd.DataFrame({"order_id": [f"O{o}" for o in order], "customer_id": pd.array(cust, dtype="string"),
                          "amount": rng.random(n) * 50, "ordered_at": day[order], "is_return": rng.random(n) < 0.1})
    got = crm_kpis(lines, "2024-02-01", "2024-11-01", freq="MS")
    sale = lines[~lines["is_return"] & lines["customer_id"].notna()]
    orders = sale.groupby("order_id").agg(c=("customer_id", "first"), t=("ordered_at", "min"), v=("amount", "sum"))
    first = orders.groupby("c")["t"].min()
    months = pd.date_range("2024-01-01", "2024-11-01", freq="MS", tz="UTC")
    active = {m: set(orders.loc[(orders["t"] >= m) & (orders["t"] < m + pd.offsets.MonthBegin()), "c"]) for m in months}
    assert len(got) == 9
    for _, row in got.iterrows():
        p, q = row["period_start"], row["period_start"] - pd.offsets.MonthBegin()
        cur, prev = active[p], active[q]
        before_p, before_q = set(first[first < p].index), set(first[first < q].index)
        in_p = orders[(orders["t"] >= p) & (orders["t"] < row["period_end"])]
        assert row["active_customers"] == len(cur) and row["orders"] == len(in_p)
        assert row["revenue"] == pytest.approx(in_p["v"].sum(), rel=1e-12)
        assert row["new_customers"] == len(cur - before_p) and row["repeat_customers"] == len(cur & before_p)
        assert row["reactivated_customers"] == len((cur - prev) & before_q)
        assert row["churned_customers"] == len(prev - cur)
        n_per = in_p.groupby("c").size()
        assert row["repeat_purchase_rate"] == pytest.approx((n_per >= 2).sum() / len(cur), rel=1e-12)
        rev = in_p.groupby("c")["v"].sum().sort_values(ascending=False)
        share = rev.iloc[:-(-len(rev) // 5)].sum() / rev.sum()
        assert row["top20_revenue_share"] == pytest.approx(share, rel=1e-12)
