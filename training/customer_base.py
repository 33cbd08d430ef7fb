"""The customer base as BG/NBD sees it: the (frequency, recency, age) of every customer at a cutoff.

Shared by the churn and next-purchase models, which both start from a BG/NBD fitted on the whole
customer base at each cutoff and let LightGBM learn what it misses.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd

from training.bgnbd import BetaGeoModel

# Feast features giving BG/NBD's x (repeat purchase days), t_x (first to last purchase) and T (age), in days.
BGNBD_INPUTS = (
    "customer_orders__repeat_purchase_days",
    "customer_orders__active_span_days",
    "customer_orders__tenure_days",
)
# Gamma-Gamma's monetary input: the customer's mean order value.
ORDER_VALUE = "customer_orders__avg_order_value_lifetime"
# What is read for every customer of the base at a cutoff.
POPULATION_COLUMNS = (*BGNBD_INPUTS, ORDER_VALUE)


def bgnbd_inputs(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) from feature columns; missing values count as no history, t_x <= T, t_x = 0 when x = 0."""
    missing = [c for c in BGNBD_INPUTS if c not in X.columns]
    if missing:
        raise ValueError(f"the BG/NBD part needs feature columns {missing}")
    return bgnbd_input_arrays(*(X[c].to_numpy(float) for c in BGNBD_INPUTS))


def bgnbd_input_arrays(repeat_days: np.ndarray, span_days: np.ndarray, tenure_days: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) from the three :data:`BGNBD_INPUTS` columns as arrays (see :func:`bgnbd_inputs`)."""
    x = _days_or_zero(repeat_days)
    t_x = _days_or_zero(span_days)
    T = np.maximum(_days_or_zero(tenure_days), t_x)
    t_x = np.where(x == 0, 0.0, t_x)
    return np.round(x), t_x, T


def _days_or_zero(values: np.ndarray) -> np.ndarray:
    """``values`` as float64 with NaN as 0 and negatives as 0 (``np.nan_to_num(v, nan=0).clip(min=0)``,
    without its cost when everything is finite: this runs for every one-customer request)."""
    v = np.asarray(values, dtype="float64")
    if not np.isfinite(v).all():
        v = np.nan_to_num(v, nan=0.0)
    return np.maximum(v, 0.0)


def fit_bgnbd(X: pd.DataFrame) -> BetaGeoModel:
    """BG/NBD fitted on the customers in ``X``."""
    return BetaGeoModel().fit(*bgnbd_inputs(X))


def fit_bgnbd_per_group(groups: np.ndarray, population: pd.DataFrame, population_groups: np.ndarray
                        ) -> dict[Hashable, BetaGeoModel]:
    """One BG/NBD per cutoff in ``groups``, each fitted on that cutoff's customer base."""
    population_groups = np.asarray(population_groups)
    fitted = {}
    for g in pd.unique(np.asarray(groups)):
        rows = population.loc[population_groups == g]
        if len(rows) == 0:
            raise ValueError(f"no population rows for cutoff {g}: pass population_groups covering every group")
        fitted[g] = fit_bgnbd(rows)
    return fitted
