"""Diagnostic plots of a churn model, as matplotlib figures (logged to MLflow, used in reports)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from training.metrics import calibration_table  # noqa: E402


def roc_figure(y: np.ndarray, scores: dict[str, np.ndarray]):
    """ROC curves of several scorers on the same labels."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (churn)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def calibration_figure(y: np.ndarray, probs: dict[str, np.ndarray], bins: int = 10):
    """Reliability diagram: mean predicted vs observed churn rate per decile of prediction."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in probs.items():
        t = calibration_table(y, p, bins)
        ax.plot(t["mean_predicted"], t["observed"], "o-", label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="mean predicted churn probability", ylabel="observed churn rate", title="Calibration")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def gains_figure(y: np.ndarray, scores: dict[str, np.ndarray]):
    """Cumulative gains: share of churners found when contacting the top x% by score."""
    fig, ax = plt.subplots(figsize=(5, 5))
    y = np.asarray(y, dtype=float)
    for name, s in scores.items():
        order = np.argsort(-np.asarray(s), kind="stable")
        found = np.cumsum(y[order]) / max(y.sum(), 1)
        ax.plot(np.arange(1, len(y) + 1) / len(y), found, label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="share of customers contacted", ylabel="share of churners found", title="Cumulative gains")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def importance_figure(importance: pd.Series, top: int = 20):
    """Horizontal bar chart of the largest feature importances (gain)."""
    imp = importance.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(imp) + 1))
    ax.barh([i.split("__", 1)[-1] for i in imp.index], imp.to_numpy())
    ax.set(xlabel="total gain", title="Feature importance")
    fig.tight_layout()
    return fig




def predicted_vs_actual_figure(actual: np.ndarray, predicted: dict[str, np.ndarray], frequency: np.ndarray):
    """Mean predicted vs actual orders per group of past-year order count (0, 1, 2, 3-4, 5-9, 10+)."""
    labels = ["0", "1", "2", "3-4", "5-9", "10+"]
    group = pd.cut(np.nan_to_num(np.asarray(frequency, float)), bins=[-0.5, 0.5, 1.5, 2.5, 4.5, 9.5, np.inf], labels=labels)
    df = pd.DataFrame({"group": group, "actual": np.asarray(actual, float)})
    for name, p in predicted.items():
        df[name] = np.asarray(p, float)
    means = df.groupby("group", observed=False).mean(numeric_only=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(means))
    ax.bar(x, means["actual"].fillna(0), color="#cccccc", label="actual", width=0.6)
    for name in predicted:
        ax.plot(x, means[name], marker="o", label=name)
    ax.set_xticks(x, means.index.astype(str))
    ax.set_xlabel("orders in the past 365 days")
    ax.set_ylabel("mean orders in the horizon")
    ax.set_title("Predicted vs actual orders by past frequency")
    ax.legend()
    fig.tight_layout()
    return fig
