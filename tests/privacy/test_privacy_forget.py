"""`ecrm forget` on a real workspace: after it, nothing in the workspace or its batch-output folders
mentions the forgotten customers (every file is searched: parquet cells, SQLite pages, pickles, MLflow
artifacts, CSV, JSON, logs), the other customers are untouched, and a later load skips them."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from configs.settings import load_settings
from features.storage import Workspace
from tests.privacy.scan import files_mentioning

CONFIG = """
workspace: {ws}
synthetic: {{customers: 400, products: 60, seed: 7, start: "2022-01-01", end: "2023-10-01"}}
churn: {{training_cutoffs: 3, horizon_days: 60}}
recommender: {{training_cutoffs: 1}}
"""


def _ecrm(cfg: Path, *args: str) -> str:
    res = CliRunner().invoke(app, ["--config", str(cfg), *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """Data, features, all four models, two scoring runs (one with refreshed recommendation lists)."""
    root = tmp_path_factory.mktemp("forget")
    cfg = root / "ecrm.yaml"
    cfg.write_text(CONFIG.format(ws=root / "ws"))
    for args in (["data", "synthesize"], ["train"], ["score", "--out", str(root / "out")],
                 ["score", "--as-of", "2023-09-01", "--out", str(root / "out2")]):
        _ecrm(cfg, *args)
    return cfg, root


def _recommender(cfg: Path):
    from serving.batch import load_recommender

    settings = load_settings(cfg)
    return load_recommender(settings, Workspace(settings.workspace))[0]


def _online(cfg: Path, ids: list[str]) -> list:
    from features.store import online_features, open_store

    settings = load_settings(cfg)
    return online_features(open_store(settings, Workspace(settings.workspace)), ids,
                           ["customer_orders:frequency_lifetime"])["customer_orders__frequency_lifetime"]


def test_nothing_about_forgotten_customers_remains(shop):
    cfg, root = shop
    ws, places = root / "ws", [root / "ws", root / "out", root / "out2"]
    churn = pd.read_parquet(root / "out" / "churn.parquet")
    sessions = pd.read_parquet(ws / "data" / "sessions.parquet")
    scored = [c for c in churn["customer_id"] if c in set(sessions["customer_id"].dropna())]
    gone, kept = scored[:2], scored[2]
    rec_before = _recommender(cfg).recommend(kept, k=5)

    before = {c: {str(Path(p).relative_to(root)) for p in files_mentioning(places, c)} for c in gone}
    must = {"ws/data/orders.parquet", "ws/data/customers.parquet", "ws/data/sessions.parquet",
            "ws/features/customer_orders.parquet", "ws/features/customer_sessions.parquet",
            "ws/feast/online_store.db", "ws/state/at_risk.parquet", "ws/state/recommender_lists.pkl",
            "out/churn.parquet", "out/at_risk.csv", "out/recommendations.parquet", "out2/segments.parquet"}
    for c in gone:  # the search finds them everywhere they are before the erasure
        assert must <= before[c], sorted(must - before[c])
        assert any(p.startswith("ws/mlflow/") and p.endswith("model.pkl") for p in before[c])

    out = _ecrm(cfg, "forget", *gone, "never-seen-id")
    assert "ws/" not in out and "online store (sqlite)" in out and "data/orders.parquet" in out

    for c in gone:
        assert files_mentioning(places, c) == {}, c
    # everyone else is untouched and every store still works
    assert kept in set(pd.read_parquet(ws / "data" / "orders.parquet")["customer_id"])
    assert len(pd.read_parquet(root / "out" / "churn.parquet")) == len(churn) - 2
    online = _online(cfg, [gone[0], kept])
    assert online[0] is None and online[1] is not None
    model = _recommender(cfg)
    assert not model.recommend(gone[0], k=5).customer_known
    after = model.recommend(kept, k=5)
    assert after.customer_known and after.product_ids == rec_before.product_ids
    # the erasure log names nobody: three salted hashes with the time
    log = (ws / "privacy" / "erasure_log.json").read_text()
    assert log.count('"id_hash"') == 3 and all(c not in log for c in gone)


def test_forgotten_customers_stay_out_of_later_loads(tmp_path):
    ws = tmp_path / "ws"
    source = tmp_path / "orders.csv"
    source.write_text("customer_id,order_id,ordered_at,amount,email\n"
                      "cust-0001,o1,2024-03-01,5,a@example.com\ncust-0002,o2,2024-03-02,7,b@example.com\n"
                      "cust-0002,o3,bad date,7,b@example.com\ncust-0003,o4,2024-03-03,9,c@example.com\n")
    runner = CliRunner()
    load = ["--workspace", str(ws), "data", "load", str(source)]
    assert runner.invoke(app, load, catch_exceptions=False).exit_code == 0
    assert files_mentioning([ws], "cust-0002")  # in orders, customers and the rejects
    res = runner.invoke(app, ["--workspace", str(ws), "forget", "cust-0002"], catch_exceptions=False)
    assert res.exit_code == 0 and "data/rejects/rejects.parquet" in res.output
    assert files_mentioning([ws], "cust-0002") == {}
    res = runner.invoke(app, load, catch_exceptions=False)  # the same file again
    assert re.search(r"\nrows of erased customers \(not loaded\) +2\n", res.output)
    assert files_mentioning([ws], "cust-0002") == {}
    assert pd.read_parquet(ws / "data" / "customers.parquet")["customer_id"].tolist() == ["cust-0001", "cust-0003"]
