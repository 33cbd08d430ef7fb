"""configs/profiles/spark.yaml on local Spark (pyspark + Java): the feature snapshots computed by Spark SQL
(the same SQL files, translated) equal DuckDB's for every view; Feast historical retrieval and
materialization through the Spark offline store give exactly what the DuckDB offline store gives,
over the same snapshot files of the tiny shop (tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from configs.settings import Settings
from features.pipeline import prepare_features
from features.repo.definitions import VIEW_SPECS, snapshot_path
from features.snapshots import ensure_snapshots
from features.storage import Workspace, write_tables
from features.synthetic import synthesize_shop
from features.store import (
    OnlineReader,
    apply_definitions,
    feature_refs,
    historical_features,
    materialize_as_of,
    open_store,
)
from tests.features.test_snapshots import EDGE_ORDER_ROWS, EDGE_SESSION_ROWS
from tests.servers.profiles import PROFILES
from tests.servers.servers import require_spark

pytestmark = [pytest.mark.servers,
              # Feast warns on every call that its Spark store is experimental (README says so once)
              pytest.mark.filterwarnings("ignore:The spark .* experimental:RuntimeWarning")]

CUTOFFS = [pd.Timestamp(t, tz="UTC") for t in ("2024-01-01", "2024-03-01", "2024-04-01")]


def _store(root, make_tiny_shop, offline: dict):
    """A workspace of the tiny shop with snapshots at CUTOFFS, applied for the given offline store."""
    settings = Settings.model_validate({"workspace": str(root), "feast": {"offline_store": offline}})
    ws = Workspace(settings.workspace)
    write_tables(ws, make_tiny_shop(), source="test")
    ensure_snapshots(ws, CUTOFFS)
    store = open_store(settings, ws)
    return settings, ws, store, apply_definitions(store, ws)


def _spark_offline() -> dict:
    """The shipped profile's ``feast.offline_store`` section."""
    return yaml.safe_load((PROFILES / "spark.yaml").read_text())["feast"]["offline_store"]


@pytest.fixture(scope="module")
def spark():
    """Skip without pyspark or Java; stop the Spark session (and its JVM) this module started."""
    require_spark()
    yield
    from pyspark.sql import SparkSession

    if (session := SparkSession.getActiveSession()) is not None:
        session.stop()


@pytest.fixture(scope="module")
def stores(spark, tmp_path_factory, make_tiny_shop):
    """(DuckDB store, Spark store from the shipped profile), each over its own copy of the same shop."""
    duck = _store(tmp_path_factory.mktemp("duckdb"), make_tiny_shop, {"type": "duckdb"})
    spark = _store(tmp_path_factory.mktemp("spark"), make_tiny_shop, _spark_offline())
    assert spark[2].config.offline_store.type == "spark"
    yield duck, spark


SNAPSHOT_CUTOFFS = [pd.Timestamp(t, tz="UTC") for t in (
    "2023-03-01", "2023-10-02 13:45:10", "2023-12-15", "2023-12-20 00:00:01", "2024-01-01", "2024-01-01 00:00:00.7")]


def test_spark_snapshots_equal_duckdb_snapshots(spark, tmp_path, monkeypatch, make_orders, make_sessions):
    """With spark.yaml, the feature stage (prepare_features, as train/score run it) computes every view's
    snapshots with Spark SQL; they equal DuckDB's on a small synthetic shop plus the hand-made edge cases of
    tests/features/test_snapshots.py (an order split across a cutoff, sub-second times, ties, old orders)."""
    from features.snapshot_engines import SparkEngine

    shop = synthesize_shop(customers=150, products=25, seed=11, start="2022-06-01", end="2024-01-01")
    tables = {**shop,
              "orders": pd.concat([shop["orders"], make_orders(EDGE_ORDER_ROWS)], ignore_index=True),
              "sessions": pd.concat([shop["sessions"], make_sessions(EDGE_SESSION_ROWS)], ignore_index=True)}
    spark_queries: list[str] = []
    query = SparkEngine.query

    def spy(self, step, where):
        spark_queries.append(where)
        return query(self, step, where)

    monkeypatch.setattr(SparkEngine, "query", spy)
    snapshots = {}
    for name, offline in (("duckdb", {"type": "duckdb"}), ("spark", _spark_offline())):
        settings = Settings.model_validate({"workspace": str(tmp_path / name), "feast": {"offline_store": offline}})
        ws = Workspace(settings.workspace)
        write_tables(ws, tables, source="test")
        _store, views = prepare_features(settings, ws, SNAPSHOT_CUTOFFS)
        assert sorted(views) == sorted(VIEW_SPECS)
        snapshots[name] = {v: pd.read_parquet(snapshot_path(ws.features_dir, v)) for v in views}
    assert {w.split("/")[-1].split(" ")[0] for w in spark_queries} == {spec[2] for spec in VIEW_SPECS.values()}
    for view, want in snapshots["duckdb"].items():
        got = snapshots["spark"][view]
        assert len(want) > 100 and set(want["event_timestamp"]) == set(SNAPSHOT_CUTOFFS), view
        # sums may add up in another order: equal to float rounding
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, atol=1e-9, obj=view)


def _entities(key: str, ids: list[str]) -> pd.DataFrame:
    """Every id at every cutoff, at a time between cutoffs and before the first one."""
    times = [*CUTOFFS, CUTOFFS[0] + pd.Timedelta(days=10), CUTOFFS[0] - pd.Timedelta(days=1)]
    rows = [(i, t) for t in times for i in ids]
    return pd.DataFrame(rows, columns=[key, "event_timestamp"])


def test_historical_retrieval_on_spark_equals_duckdb(stores):
    (_s, _w, duck, views), (_s2, _w2, spark, spark_views) = stores
    assert spark_views == views
    for key, ids, chosen in (("customer_id", ["C1", "C2", "C3", "C4", "NOPE"], ["customer_orders", "customer_sessions"]),
                             ("product_id", ["P1", "P2", "P3", "P4", "P5", "NOPE"], ["product_stats"])):
        entity_df = _entities(key, ids)
        refs = feature_refs(chosen)
        want = historical_features(duck, entity_df, refs)
        got = historical_features(spark, entity_df, refs)
        pd.testing.assert_frame_equal(got, want)
        assert want.iloc[:, 2:].notna().any(axis=None)  # real values compared, not only misses


def test_online_load_of_the_spark_profile_fills_the_online_store_alike(stores):
    """The online load reads each view's snapshot file in chunks whatever the offline engine that wrote
    it (Spark SQL here): the same values online as with DuckDB."""
    (_s, ws_duck, duck, views), (_s2, ws_spark, spark, _v) = stores
    refs = feature_refs(["customer_orders"])
    materialize_as_of(duck, ws_duck, CUTOFFS[1], views)
    materialize_as_of(spark, ws_spark, CUTOFFS[1], views)
    ids = ["C1", "C2", "C3", "NOPE"]
    want, known_want = OnlineReader(duck, refs).read(ids)
    got, known = OnlineReader(spark, refs).read(ids)
    np.testing.assert_array_equal(known, known_want)
    assert known.tolist() == [True, True, True, False]
    np.testing.assert_allclose(got, want, equal_nan=True)


@pytest.mark.slow
def test_cli_pipeline_on_spark_scores_like_duckdb(tmp_path_factory):
    """The whole CLI (synthesize, train every customer model, score) runs with the Spark profile and gives
    the churn scores of the default, within what a retrain moves them.
    Slow (about 4 minutes on 2 cores, Spark being the slow part): `make test-all` or `pytest -m slow`."""
    require_spark()
    from tests.servers.profiles import profile_config, run_cli

    scores = {}
    for profile in (None, "spark"):  # None: the embedded default (DuckDB)
        root = tmp_path_factory.mktemp(f"cli-{profile or 'duckdb'}")
        cfg = profile_config(root, profile, {"recommender": {"enabled": False}})
        for args in (["data", "synthesize"], ["train"], ["score", "--out", str(root / "out")]):
            run_cli(cfg, *args)
        scores[profile] = pd.read_parquet(root / "out" / "churn.parquet")
    duck, spark = (scores[k].set_index("customer_id")["churn_probability"] for k in (None, "spark"))
    assert set(spark.index) == set(duck.index)
    # The features are identical (tests above, and checked on this shop's 8,857 training rows), yet in one
    # run the scores were not bit-identical; the cause is not pinned down (a suspect: LightGBM chooses its
    # histogram layout by timing, which a busy machine changes). So compare scores within a tolerance.
    diff = (spark - duck.loc[spark.index]).abs()
    assert diff.mean() < 0.01 and diff.max() < 0.1, diff.describe().to_string()
