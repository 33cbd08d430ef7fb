"""training.sampling: the churn and next-purchase training sets of a large shop come from a stable sample
of customers, every row of each sampled customer kept."""

from __future__ import annotations

import pandas as pd
import pytest

from configs.settings import Settings
from training.churn_pipeline import training_orders
from training.sampling import sample_customers


def _orders(n_customers: int) -> pd.DataFrame:
    ids = [f"C{i}" for i in range(n_customers) for _ in range(i % 3 + 1)]  # 1 to 3 orders each
    return pd.DataFrame({"customer_id": ids, "order_id": range(len(ids))})


def test_a_shop_within_the_cap_is_not_sampled():
    orders = _orders(10)
    assert sample_customers(orders, 10) is orders
    assert sample_customers(orders, None) is orders


def test_the_sample_keeps_whole_customers_and_does_not_depend_on_row_order():
    orders = _orders(200)
    sample = sample_customers(orders, 50)
    kept = set(sample["customer_id"])
    assert len(kept) == 50
    pd.testing.assert_frame_equal(sample, orders[orders["customer_id"].isin(kept)])  # every row of each
    shuffled = sample_customers(orders.sample(frac=1.0, random_state=3), 50)
    assert set(shuffled["customer_id"]) == kept
    assert set(sample_customers(orders, 20)["customer_id"]) < kept  # a smaller cap keeps a subset
    assert kept != {f"C{i}" for i in range(50)}  # not simply the first customers


def test_a_cap_below_one_is_refused():
    with pytest.raises(ValueError, match="max_customers must be at least 1"):
        sample_customers(_orders(5), 0)


def test_training_orders_follow_the_setting_and_say_so(tmp_path):
    orders = _orders(30)
    said: list[str] = []
    capped = Settings.model_validate({"workspace": str(tmp_path), "churn": {"max_training_customers": 12}})
    got = training_orders(capped, orders, said.append)
    assert got["customer_id"].nunique() == 12
    assert said == ["training sets from a sample of 12 of 30 customers (churn.max_training_customers)"]
    said.clear()
    assert training_orders(Settings(workspace=tmp_path), orders, said.append) is orders and said == []
