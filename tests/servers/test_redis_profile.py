"""configs/profiles/redis.yaml against a real redis-server: synthesize, train and score write the online
features into Redis; the online reader and the HTTP service read them from there, survive an outage."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest

from configs.settings import load_settings
from features.snapshots import as_utc
from features.storage import Workspace
from features.store import OnlineReader, feature_refs, online_snapshot_info, open_store
from serving.process import stop_background
from tests.e2e.shop import serve
from tests.servers.profiles import profile_config, run_cli
from tests.servers.servers import start_redis, stop_process

pytestmark = [pytest.mark.servers, pytest.mark.e2e]


@pytest.fixture(scope="module")
def shop(tmp_path_factory, redis):
    """The small shop trained and scored with the Redis profile (no recommender: it does not use Redis)."""
    root = tmp_path_factory.mktemp("redis-shop")
    cfg = profile_config(root, "redis", {"feast": {"online_store": {"connection_string": redis.connection_string}},
                                         "recommender": {"enabled": False}})
    for args in (["data", "synthesize"], ["train"], ["score", "--out", str(root / "out")]):
        run_cli(cfg, *args)
    return cfg, root


def test_online_features_live_in_redis(shop, redis):
    cfg, root = shop
    settings = load_settings(cfg)
    ws = Workspace(settings.workspace)
    assert settings.feast.online_store.type == "redis"
    assert not (ws.feast_dir / "online_store.db").exists()  # nothing went to the SQLite default
    import redis as redis_client

    assert redis_client.Redis(host="127.0.0.1", port=redis.port).dbsize() > 0
    # the online lookup returns the snapshot the batch scored, for known ids; unknown ids are unknown
    info = online_snapshot_info(ws)
    snap = pd.read_parquet(ws.features_dir / "customer_orders.parquet")
    snap = snap[snap["event_timestamp"] == as_utc(info["as_of"])].set_index("customer_id")
    ids = pd.read_parquet(root / "out" / "churn.parquet")["customer_id"].head(20).tolist()
    refs = feature_refs(["customer_orders"])
    values, known = OnlineReader(open_store(settings, ws), refs).read([*ids, "no-such-customer"])
    assert known.tolist() == [True] * len(ids) + [False]
    want = snap.loc[ids, [r.split(":")[1] for r in refs]].to_numpy(dtype=float)
    np.testing.assert_allclose(values[: len(ids)], want, rtol=1e-9, equal_nan=True)


def test_online_load_by_worker_processes_into_redis(shop, redis, monkeypatch):
    """The online load with two worker processes (forced for this small shop) writes the same vectors."""
    import redis as redis_client

    import features.store
    from features.pipeline import customer_views
    from features.store import apply_definitions, materialize_as_of

    cfg, root = shop
    settings = load_settings(cfg)
    ws = Workspace(settings.workspace)
    store = open_store(settings, ws)
    views = customer_views(apply_definitions(store, ws))
    as_of = as_utc(online_snapshot_info(ws)["as_of"])
    client = redis_client.Redis(host="127.0.0.1", port=redis.port)
    keys = client.dbsize()
    client.flushdb()
    monkeypatch.setattr(features.store, "PARALLEL_LOAD_ROWS", 0)
    materialize_as_of(store, ws, as_of, views, chunk_rows=50, workers=2)
    assert client.dbsize() == keys  # every customer back (a key per customer, holding both views)
    snap = pd.read_parquet(ws.features_dir / "customer_orders.parquet")
    snap = snap[snap["event_timestamp"] == as_of].set_index("customer_id")
    refs = feature_refs(["customer_orders"])
    values, known = OnlineReader(store, refs).read(snap.index.tolist())
    assert known.all()
    np.testing.assert_allclose(values, snap[[r.split(":")[1] for r in refs]].to_numpy(dtype=float), rtol=1e-9,
                               equal_nan=True)


def test_forget_removes_the_customer_from_redis(shop, redis):
    """`ecrm forget` with the Redis profile: the customer's key is gone from Redis, the online lookup
    calls them unknown, and the other customers are still served."""
    import redis as redis_client

    cfg, root = shop
    settings = load_settings(cfg)
    ws = Workspace(settings.workspace)
    ids = pd.read_parquet(root / "out" / "churn.parquet")["customer_id"].tolist()
    gone, kept = ids[10], ids[11]  # not among the first rows the HTTP test below uses
    client = redis_client.Redis(host="127.0.0.1", port=redis.port)
    keys_before = client.dbsize()
    reader = OnlineReader(open_store(settings, ws), feature_refs(["customer_orders"]))
    assert reader.read([gone, kept])[1].tolist() == [True, True]
    run_cli(cfg, "forget", gone)
    assert client.dbsize() == keys_before - 1
    assert not any(gone.encode() in k for k in client.scan_iter(count=1000))
    assert reader.read([gone, kept])[1].tolist() == [False, True]


def test_http_churn_reads_redis_and_recovers_from_an_outage(shop, redis, monkeypatch):
    cfg, root = shop
    churn = pd.read_parquet(root / "out" / "churn.parquet")
    known = churn["customer_id"].head(3).tolist()
    server = serve(cfg, monkeypatch, "k-redis", timeout=180)
    url, ws = server.url, server.ws
    try:
        with httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": "k-redis"}) as http:
            assert http.get("/model_info").json()["features"]["online_store"] == "redis"
            r = http.post("/churn", json={"customer_ids": [*known, "no-such-customer"]})
            assert r.status_code == 200, r.text
            results = r.json()["results"]
            for res, (_, row) in zip(results, churn.head(3).iterrows()):
                assert res["status"] == "ok"
                assert res["churn_probability"] == pytest.approx(row["churn_probability"], abs=1e-6)
            assert results[-1]["status"] == "unknown_customer"
            # Redis goes away: 503 naming the store, not a crash
            stop_process(redis.proc)
            down = http.post("/churn", json={"customer_ids": known[:1]})
            assert down.status_code == 503, down.text
            assert "redis online store is unavailable" in down.json()["detail"]
            # back on the same port (empty: no persistence), refilled by `ecrm score`: served again, no restart
            again = start_redis(redis.port)
            try:
                run_cli(cfg, "score", "--out", str(root / "out2"))
                ok = http.post("/churn", json={"customer_ids": known[:1]})
                assert ok.status_code == 200, ok.text
                assert ok.json()["results"][0]["churn_probability"] == pytest.approx(
                    churn["churn_probability"].iloc[0], abs=1e-6)
            finally:
                stop_process(again.proc)
    finally:
        assert stop_background(ws)
