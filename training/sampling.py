"""A stable sample of customers for the customer models' training sets, bounding their size on large shops.

The churn and next-purchase training sets stack every eligible customer at every training cutoff; on a
shop of a million customers that is tens of millions of rows and their point-in-time features. Above
``churn.max_training_customers`` customers, the training sets are built from a sample: the customers whose
keyed hash of the id is smallest. The same customers are kept at every cutoff and in every run on the same
data, whatever the row order, and a customer's presence does not depend on the others'. Scoring, the
models' level anchoring and the at-risk list still cover every customer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SAMPLE_KEY = "ecrm-train-smpl0"  # 16 bytes: pandas' hash key; change it to draw another sample


def sample_customers(order_rows: pd.DataFrame, max_customers: int | None) -> pd.DataFrame:
    """``order_rows`` restricted to at most ``max_customers`` customers (``customer_id`` column): all of
    them when there are no more than that (or ``max_customers`` is None), else the sample above."""
    ids = pd.unique(order_rows["customer_id"].astype(str))
    if max_customers is None or len(ids) <= max_customers:
        return order_rows
    if max_customers < 1:
        raise ValueError(f"max_customers must be at least 1, got {max_customers}")
    hashes = pd.util.hash_array(np.asarray(ids, dtype=object), hash_key=SAMPLE_KEY, categorize=False)
    keep = ids[np.argsort(hashes, kind="stable")[:max_customers]]
    return order_rows[order_rows["customer_id"].astype(str).isin(keep)]
