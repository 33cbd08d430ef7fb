"""Figures of the evaluation report (matplotlib, Agg backend); every function returns a Figure.

The caller owns the figure: :meth:`evaluation.html_report.HtmlReport.add_figure` closes it.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ACTUAL_COLOR = "#444444"
FREQUENCY_BINS = [-np.inf, 0.5, 1.5, 2.5, 3.5, 5.5, 10.5, np.inf]
FREQUENCY_LABELS = ["0", "1", "2", "3", "4-5", "6-10", "11+"]


def _label(value: object) -> str:
    """Axis label of a cutoff / period: the date of a midnight timestamp, else its text."""
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        return str(value.date()) if value == value.normalize() else value.isoformat(timespec="minutes")
    return str(value)


def metric_by_cutoff(table: pd.DataFrame, metric: str):
    """One line per scorer of ``metric`` per cutoff; NaN values are skipped, all-NaN scorers not drawn."""
    for col in ("cutoff", "scorer", metric):
        if col not in table.columns:
            raise ValueError(f"table has no column {col!r}")
    cutoffs = table["cutoff"].drop_duplicates().tolist()
    try:
        cutoffs = sorted(cutoffs)
    except TypeError:
        pass
    position = {c: i for i, c in enumerate(cutoffs)}
    fig, ax = plt.subplots(figsize=(7, 4))
    for scorer in pd.unique(table["scorer"]):
        rows = table[(table["scorer"] == scorer)]
        values = pd.to_numeric(rows[metric], errors="coerce").to_numpy(float)
        keep = np.isfinite(values)
        if not keep.any():
            continue
        x = [position[c] for c, k in zip(rows["cutoff"].tolist(), keep) if k]
        order = np.argsort(x, kind="stable")
        ax.plot(np.asarray(x)[order], values[keep][order], marker="o", label=str(scorer))
    ax.set_xticks(range(len(cutoffs)), [_label(c) for c in cutoffs])
    ax.set(xlabel="cutoff", ylabel=metric, title=f"{metric} per cutoff")
    if ax.get_lines():
        ax.legend()
    fig.tight_layout()
    return fig


def predicted_vs_actual_by_group(actual: np.ndarray, predicted: dict[str, np.ndarray], frequency: np.ndarray):
    """Grouped bars of mean actual and mean predicted per group of past-year order frequency.

    Groups: 0, 1, 2, 3, 4-5, 6-10, 11+ orders (NaN frequency counts as 0); empty groups are left out and
    each tick shows the group's size.
    """
    freq = np.nan_to_num(np.asarray(frequency, dtype=float))
    group = pd.cut(freq, bins=FREQUENCY_BINS, labels=FREQUENCY_LABELS)
    df = pd.DataFrame({"group": group, "actual": np.asarray(actual, dtype=float)})
    for name, p in predicted.items():
        df[f"pred::{name}"] = np.asarray(p, dtype=float)
    g = df.groupby("group", observed=True)
    means, sizes = g.mean(numeric_only=True), g.size()
    series = [("actual", "actual")] + [(f"pred::{n}", n) for n in predicted]
    width = 0.8 / len(series)
    x = np.arange(len(means))
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, (col, label) in enumerate(series):
        offset = (i - (len(series) - 1) / 2) * width
        color = ACTUAL_COLOR if col == "actual" else None
        ax.bar(x + offset, means[col].fillna(0).to_numpy(), width=width, label=label, color=color)
    ax.set_xticks(x, [f"{lab}\n(n={sizes[lab]:,})" for lab in means.index])
    ax.set(xlabel="orders in the past 365 days", ylabel="mean orders in the horizon",
           title="Predicted vs actual by past frequency")
    ax.legend()
    fig.tight_layout()
    return fig


def segment_sizes(labels: pd.Series, title: str):
    """Horizontal bars of the number of customers per label (largest on top), with count and share."""
    counts = pd.Series(labels).astype(object).fillna("(missing)").astype(str).value_counts()
    total = int(counts.sum())
    counts = counts.sort_values(ascending=True, kind="stable")  # barh draws bottom-up: largest on top
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(counts) + 1.2))
    bars = ax.barh(counts.index, counts.to_numpy())
    for bar, n in zip(bars, counts.to_numpy()):
        ax.annotate(f"{n:,} ({n / total:.1%})", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    if total:
        ax.set_xlim(0, counts.max() * 1.25)
    ax.set(xlabel="customers", title=title)
    fig.tight_layout()
    return fig


def transition_table(before: pd.Series, after: pd.Series, order: list[str] | None = None) -> pd.DataFrame:
    """Row-normalised crosstab (rows = before, columns = after; each observed row sums to 1).

    Labels follow ``order`` (labels absent from the data stay as NaN rows and 0 columns), then labels
    not in ``order`` sorted; without ``order`` all labels are sorted. Pairs with a missing label are dropped.
    """
    b = pd.Series(np.asarray(before, dtype=object))
    a = pd.Series(np.asarray(after, dtype=object))
    if len(a) != len(b):
        raise ValueError(f"before has {len(b)} values, after has {len(a)}")
    keep = b.notna() & a.notna()
    b, a = b[keep], a[keep]
    seen = set(b) | set(a)
    head = list(order or [])
    labels = head + sorted((v for v in seen if v not in set(head)), key=str)
    counts = pd.crosstab(b, a).reindex(index=labels, columns=labels, fill_value=0).astype(float)
    totals = counts.sum(axis=1)
    table = counts.div(totals.where(totals > 0), axis=0)
    table.index.name, table.columns.name = "before", "after"
    return table


def transition_matrix(before: pd.Series, after: pd.Series, title: str, order: list[str] | None = None):
    """Heat map of :func:`transition_table` with each cell's share as a percentage."""
    table = transition_table(before, after, order)
    values = table.to_numpy(float)
    n = len(table)
    fig, ax = plt.subplots(figsize=(0.8 * n + 3, 0.6 * n + 2))
    im = ax.imshow(np.ma.masked_invalid(values), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(n):
        for j in range(n):
            v = values[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=8,
                        color="white" if v > 0.6 else "black")
    ticks = [str(c) for c in table.columns]
    ax.set_xticks(range(n), ticks, rotation=45, ha="right")
    ax.set_yticks(range(n), [str(r) for r in table.index])
    ax.set(xlabel="after", ylabel="before", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of row")
    fig.tight_layout()
    return fig


def kpi_trends(kpis: pd.DataFrame):
    """Three panels per period: customer counts, repeat-purchase rate and top-20 % revenue share, revenue."""
    x = np.arange(len(kpis))
    labels = [_label(pd.Timestamp(p)) for p in kpis["period_start"]]
    fig, axes = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    counts, rates, money = axes
    for col in ("active_customers", "new_customers", "repeat_customers", "reactivated_customers",
                "churned_customers"):
        counts.plot(x, kpis[col].to_numpy(float), marker="o", label=col.replace("_customers", ""))
    counts.set(ylabel="customers", title="Customers per period")
    counts.legend(fontsize=8)
    for col in ("repeat_purchase_rate", "top20_revenue_share"):
        rates.plot(x, kpis[col].to_numpy(float), marker="o", label=col.replace("_", " "))
    rates.set(ylabel="share", ylim=(0, 1), title="Repeat purchases and revenue concentration")
    rates.legend(fontsize=8)
    money.bar(x, kpis["revenue"].to_numpy(float), color="#7a9cc6")
    money.set(ylabel="revenue", title="Revenue per period")
    money.set_xticks(x, labels, rotation=45, ha="right")
    fig.tight_layout()
    return fig
