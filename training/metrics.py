"""Metrics shared by in-training validation and evaluation: classification (churn) and counts (orders, spend)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def top_decile_lift(y_true: np.ndarray, score: np.ndarray) -> float:
    """Positive rate among the 10% highest scores divided by the overall positive rate."""
    y_true = np.asarray(y_true, dtype=float)
    score = np.asarray(score, dtype=float)
    n = max(1, int(np.ceil(0.1 * len(y_true))))
    top = np.argsort(-score, kind="stable")[:n]
    base = y_true.mean()
    return float(y_true[top].mean() / base) if base > 0 else float("nan")


def churn_metrics(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC, Brier score, top-decile lift, mean predicted and observed churn rate."""
    y_true = np.asarray(y_true, dtype=int)
    p = np.asarray(p, dtype=float)
    both = len(np.unique(y_true)) == 2
    return {
        "roc_auc": float(roc_auc_score(y_true, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y_true, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y_true, np.clip(p, 0, 1))),
        "top_decile_lift": top_decile_lift(y_true, p),
        "mean_predicted": float(p.mean()),
        "churn_rate": float(y_true.mean()),
        "n": int(len(y_true)),
    }


def calibration_table(y_true: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed rate in equal-count bins of the prediction."""
    df = pd.DataFrame({"y": np.asarray(y_true, dtype=float), "p": np.asarray(p, dtype=float)})
    df["bin"] = pd.qcut(df["p"].rank(method="first"), q=min(bins, len(df)), labels=False)
    return df.groupby("bin").agg(mean_predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size")).reset_index()


def fast_roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC from ranks (Mann-Whitney U), ties counted half; NaN when only one class is present.

    Equal to ``sklearn.metrics.roc_auc_score`` and much cheaper inside bootstrap loops.
    """
    y = np.asarray(y_true).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(score, dtype=float))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def count_metrics(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Forecasts of counts or money: Poisson deviance, RMSE, MAE and predicted ÷ actual total.

    MAE alone misleads on zero-inflated targets (forecasting zero for everyone wins it); the mean
    Poisson deviance and the total ratio do not.
    """
    y = np.asarray(y_true, dtype=float)
    mu = np.maximum(np.asarray(predicted, dtype=float), 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return {
        "poisson_deviance": float(np.mean(2.0 * (term - y + mu))),
        "rmse": float(np.sqrt(np.mean((y - mu) ** 2))),
        "mae": float(np.mean(np.abs(y - mu))),
        "total_ratio": float(mu.sum() / y.sum()) if y.sum() > 0 else float("nan"),
        "mean_predicted": float(mu.mean()),
        "mean_actual": float(y.mean()),
        "n": int(len(y)),
    }
