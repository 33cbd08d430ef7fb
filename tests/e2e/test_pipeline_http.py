"""End to end on a small synthetic shop: CLI stages, then the real BentoML server over HTTP."""

from __future__ import annotations

import io
import json
import threading
import time

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from configs.settings import load_settings
from features.storage import Workspace
from serving.process import stop_background
from tests.e2e.shop import build_shop, serve
from training.registry import CHAMPION, CHURN_MODEL, configure, get_alias

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A workspace with data, a trained champion and batch scores, made through the CLI."""
    return build_shop(tmp_path_factory.mktemp("e2e"))


def test_cli_stages_are_idempotent(shop):
    cfg, root = shop
    res = CliRunner().invoke(app, ["--config", str(cfg), "train"], catch_exceptions=False)
    assert res.exit_code == 0
    assert "already trained on this data and config" in res.output
    res = CliRunner().invoke(app, ["--config", str(cfg), "data", "synthesize"], catch_exceptions=False)
    assert "nothing to do" in res.output


def test_batch_outputs(shop):
    _cfg, root = shop
    churn = pd.read_parquet(root / "out" / "churn.parquet")
    at_risk = pd.read_csv(root / "out" / "at_risk.csv", dtype={"customer_id": str})
    assert {"customer_id", "churn_probability", "risk_band", "monetary_365d", "top_drivers"} <= set(churn.columns)
    assert churn["customer_id"].is_unique and len(churn) == len(at_risk) > 100
    assert churn["churn_probability"].between(0, 1).all()
    assert set(churn["risk_band"]) <= {"high", "medium", "low"}
    assert at_risk["churn_probability"].is_monotonic_decreasing  # sorted by risk
    drivers = json.loads(churn.loc[0, "top_drivers"])
    assert drivers and {"feature", "value", "impact", "text"} <= set(drivers[0])


def test_next_purchase_and_segment_outputs(shop):
    _cfg, root = shop
    churn = pd.read_parquet(root / "out" / "churn.parquet")
    nxt = pd.read_parquet(root / "out" / "next_purchase.parquet")
    seg = pd.read_parquet(root / "out" / "segments.parquet")
    assert list(nxt.columns) == ["customer_id", "p_purchase_30d", "p_purchase_horizon", "expected_purchases",
                                 "expected_spend", "expected_next_purchase_date", "clv_12m"]
    assert list(seg.columns) == ["customer_id", "recency_score", "frequency_score", "monetary_score", "rfm_segment",
                                 "lifecycle_stage", "value_tier", "abc_class", "cluster"]
    assert set(nxt["customer_id"]) == set(seg["customer_id"]) == set(churn["customer_id"])
    assert (nxt["p_purchase_30d"] <= nxt["p_purchase_horizon"] + 1e-9).all()
    assert (nxt["clv_12m"] >= nxt["expected_spend"] - 1e-9).all() and (nxt["expected_purchases"] >= 0).all()
    assert seg["recency_score"].between(1, 5).all()
    assert set(seg["lifecycle_stage"]) <= {"new", "repeat", "loyal", "lapsing", "churned"}
    assert set(seg["value_tier"]) <= {"top", "big", "medium", "small"} and set(seg["abc_class"]) <= {"A", "B", "C"}


def test_score_writes_warning_indicators(shop):
    _cfg, root = shop
    record = json.loads((root / "out" / "warnings.json").read_text())
    names = [w["indicator"] for w in record["warnings"]]
    assert names == ["top_tier_high_risk_share", "churned_customer_rate", "repeat_purchase_rate", "new_customers_change"]
    churn = pd.read_parquet(root / "out" / "churn.parquet")
    top = churn[churn["value_tier"] == "top"]
    first = record["warnings"][0]
    assert first["value"] == pytest.approx((top["risk_band"] == "high").mean(), abs=1e-4)
    assert first["status"] == ("warning" if first["value"] > first["threshold"] else "ok")
    assert all(w["status"] in ("ok", "warning", "unavailable") and w["message"] for w in record["warnings"])


def test_recommendation_outputs(shop):
    _cfg, root = shop
    churn = pd.read_parquet(root / "out" / "churn.parquet")
    orders = Workspace(root / "ws").read_table("orders")
    for name in ("recommendations", "recommendations_discovery"):
        recs = pd.read_parquet(root / "out" / f"{name}.parquet")
        assert list(recs.columns) == ["customer_id", "rank", "product_id", "score", "reason"]
        assert set(recs["customer_id"]) == set(churn["customer_id"])  # every customer active in the prior 365 days
        ranks = recs.groupby("customer_id")["rank"].apply(list)
        assert all(r == list(range(1, 11)) for r in ranks)
        assert not recs.duplicated(["customer_id", "product_id"]).any()
        assert recs["reason"].str.len().gt(0).all()
    disc = pd.read_parquet(root / "out" / "recommendations_discovery.parquet")
    bought = orders.dropna(subset=["customer_id", "product_id"])[["customer_id", "product_id"]].drop_duplicates()
    clash = disc.merge(bought.astype("string"), on=["customer_id", "product_id"])
    assert clash.empty  # discovery = never bought before


def test_evaluate_writes_a_report_with_every_section(shop):
    cfg, root = shop
    res = CliRunner().invoke(app, ["--config", str(cfg), "evaluate"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "model minus best baseline" in res.output
    reports = sorted((root / "ws" / "outputs" / "reports").glob("evaluation-*.html"))
    assert reports, res.output
    html = reports[-1].read_text()
    assert "ranker minus best baseline, NDCG" in res.output
    for section in ("Set-up", "Verdicts: model minus its best baseline", "Churn", "Next purchase and value", "Segments",
                    "Recommendations", "CRM KPIs per quarter"):
        assert f">{section}<" in html, section
    assert html.count("data:image/png;base64,") >= 9  # gains, calibration, per-cutoff, groups, sizes, movement, KPIs
    res = CliRunner().invoke(app, ["--config", str(cfg), "compare"], catch_exceptions=False)
    assert res.exit_code == 0 and "ecrm-churn" in res.output and "recent evaluations" in res.output
    assert "champion" in res.output  # aliases are listed


def test_http_service(shop, monkeypatch):
    cfg, root = shop
    server = serve(cfg, monkeypatch, "k-one,k-two")
    url, ws = server.url, server.ws
    try:
        churn = pd.read_parquet(root / "out" / "churn.parquet")
        known = churn["customer_id"].head(3).tolist()
        # API keys: health and docs are open, everything else needs a valid X-API-Key
        with httpx.Client(base_url=url, timeout=10) as anonymous:
            assert anonymous.get("/healthz").status_code == 200 and anonymous.get("/docs.json").status_code == 200
            r = anonymous.post("/churn", json={"customer_ids": known[:1]})
            assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]
            assert anonymous.get("/model_info", headers={"X-API-Key": "k-three"}).status_code == 401
        with httpx.Client(base_url=url, timeout=10, headers={"X-API-Key": "k-two"}) as http:
            assert http.get("/readyz").status_code == 200
            # every 5th answer of a worker asks the client to reconnect (keepalive_requests: 5), without errors
            answers = [http.get("/model_info") for _ in range(40)]
            assert {r.status_code for r in answers} == {200}
            assert sum(r.headers.get("connection") == "close" for r in answers) >= 40 // 5 - 1
            assert http.get("/healthz").status_code == 200
            r = http.post("/churn", json={"customer_ids": [*known, "no-such-customer"]})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["model"]["name"] == "ecrm-churn" and body["model"]["alias"] == "champion"
            results = body["results"]
            assert [x["customer_id"] for x in results] == [*known, "no-such-customer"]
            assert results[-1]["status"] == "unknown_customer" and results[-1]["churn_probability"] is None
            for res, (_, row) in zip(results[:3], churn.head(3).iterrows()):
                # HTTP and batch read the same snapshot and scoring function: same answer
                assert res["status"] == "ok"
                assert res["churn_probability"] == pytest.approx(row["churn_probability"], abs=1e-6)
                assert res["risk_band"] == row["risk_band"]
            nxt = pd.read_parquet(root / "out" / "next_purchase.parquet").set_index("customer_id")
            r = http.post("/next_purchase", json={"customer_ids": [known[0], "no-such-customer"]})
            assert r.status_code == 200, r.text
            first, unknown = r.json()["results"]
            assert first["clv_12m"] == pytest.approx(nxt.loc[known[0], "clv_12m"], rel=1e-6)
            assert unknown["status"] == "unknown_customer" and unknown["clv_12m"] is None
            seg = pd.read_parquet(root / "out" / "segments.parquet").set_index("customer_id")
            r = http.post("/segment", json={"customer_ids": [known[0]]})
            assert r.status_code == 200, r.text
            got = r.json()["results"][0]
            assert got["rfm_segment"] == seg.loc[known[0], "rfm_segment"]  # same segment from batch and HTTP
            assert got["lifecycle_stage"] == seg.loc[known[0], "lifecycle_stage"]
            c360 = http.get(f"/customers/{known[0]}")
            assert c360.status_code == 200, c360.text
            c360 = c360.json()
            assert c360["churn"]["churn_probability"] == pytest.approx(results[0]["churn_probability"])
            assert c360["next_purchase"]["clv_12m"] == pytest.approx(nxt.loc[known[0], "clv_12m"], rel=1e-6)
            assert c360["segments"]["lifecycle_stage"] == seg.loc[known[0], "lifecycle_stage"]
            assert len(c360["recommendations"]) == 5 and c360["models"]["churn"] == body["model"]["version"]
            missing = http.get("/customers/no-such-customer")
            assert missing.status_code == 404 and missing.json()["error"] == "unknown_customer"
            page = http.post("/at_risk", json={"min_probability": 0.5, "lifecycle_stages": ["lapsing", "churned"],
                                               "page": 1, "page_size": 3})
            assert page.status_code == 200, page.text
            page = page.json()
            want = churn[(churn["churn_probability"] >= 0.5) & churn["lifecycle_stage"].isin(["lapsing", "churned"])]
            assert page["total"] == len(want) and len(page["items"]) == min(3, len(want))
            top3 = want.sort_values(["value_at_risk", "churn_probability"], ascending=False)["customer_id"].head(3).tolist()
            assert [x["customer_id"] for x in page["items"]] == top3
            assert {"value_at_risk", "rfm_segment", "value_tier", "country"} <= set(page["items"][0])
            csv = http.get("/at_risk.csv", params={"min_probability": 0.5, "lifecycle_stage": ["lapsing", "churned"]})
            assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
            assert pd.read_csv(io.StringIO(csv.text), dtype={"customer_id": str})["customer_id"].head(3).tolist() == top3
            assert http.post("/at_risk", json={"page": 0}).status_code == 400
            metrics = httpx.get(f"{url}/metrics").text  # open, like the health checks
            assert 'ecrm_model_version{model="churn"}' in metrics and "ecrm_features_as_of_seconds" in metrics
            assert "bentoml_service_request_total" in metrics or "bentoml_api_server_request_total" in metrics
            warn = http.get("/warnings")
            assert warn.status_code == 200, warn.text
            assert warn.json() == json.loads((root / "out" / "warnings.json").read_text())
            info = http.get("/model_info").json()
            assert info["models"]["churn"]["version"] == body["model"]["version"]
            assert info["features"]["as_of"] == body["features_as_of"]
            # bad requests: 4xx with a message, never a failed server
            too_many = http.post("/churn", json={"customer_ids": [str(i) for i in range(6)]})
            assert too_many.status_code == 400 and "maximum per request is 5" in too_many.text
            assert http.post("/churn", json={"customer_ids": "abc"}).status_code == 400
            assert http.post("/churn", json={"ids": ["1"]}).status_code == 400
            assert http.post("/churn", json={"customer_ids": []}).status_code == 400
            assert http.post("/churn", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
            # every error answer is JSON {"error": code, "detail": message}, whoever produced it
            bad_csv = http.get("/at_risk.csv", params={"min_probability": "high"})
            assert bad_csv.status_code == 400 and bad_csv.json()["error"] == "invalid_request"
            assert bad_csv.json()["detail"].startswith("min_probability: ")
            errors = {"invalid body": http.post("/churn", json={"customer_ids": "abc"}),
                      "too many ids": too_many, "bad csv filter": bad_csv,
                      "unknown path": http.get("/no-such-endpoint"), "wrong method": http.get("/churn"),
                      "no key": httpx.post(f"{url}/churn", json={"customer_ids": known[:1]}),
                      "unknown customer": http.get("/customers/no-such-customer")}
            for what, resp in errors.items():
                assert 400 <= resp.status_code < 500 and resp.headers["content-type"] == "application/json", what
                body = resp.json()
                assert isinstance(body, dict) and isinstance(body["error"], str) and body["detail"], (what, body)
            assert errors["too many ids"].json() == {
                "error": "bad_request", "detail": "customer_ids has 6 ids; the maximum per request is 5"}
            assert errors["invalid body"].json()["errors"][0]["loc"] == ["customer_ids"]
            assert errors["wrong method"].status_code == 405
            doc = http.get("/docs.json").json()
            assert doc["openapi"] == "3.1.0" and "ErrorBody" in doc["components"]["schemas"]
            # online store outage: 503 with the reason, and recovery without a restart
            db = ws.feast_dir / "online_store.db"
            original = db.read_bytes()
            try:
                db.write_bytes(b"this is not a database " * 4096)
                down = http.post("/churn", json={"customer_ids": known[:1]})
                assert down.status_code == 503, down.text
                assert down.json()["error"] == "online_store_unavailable" and "unavailable" in down.json()["detail"]
            finally:
                db.write_bytes(original)
            assert http.post("/churn", json={"customer_ids": known[:1]}).status_code == 200
            huge = http.post("/churn", content=b" " * (2 * 1024 * 1024), headers={"content-type": "application/json"})
            assert huge.status_code == 413 and huge.json()["error"] == "payload_too_large"

            # recommendations: the same lists over HTTP as in the batch output
            recs = pd.read_parquet(root / "out" / "recommendations.parquet")
            cid = recs["customer_id"].iloc[0]
            r = http.post("/recommend", json={"customer_id": cid, "k": 10})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["model"]["name"] == "ecrm-recommender" and body["customer_known"] and body["source"] == "personal"
            assert [x["product_id"] for x in body["items"]] == recs.loc[recs["customer_id"] == cid, "product_id"].tolist()
            assert [x["rank"] for x in body["items"]] == list(range(1, 11)) and all(x["reason"] for x in body["items"])
            first = body["items"][0]["product_id"]
            r = http.post("/recommend", json={"customer_id": cid, "k": 5, "list": "discovery",
                                              "exclude_product_ids": [first, "no-such-product"]})
            assert r.status_code == 200, r.text
            assert r.json()["unknown_product_ids"] == ["no-such-product"] and len(r.json()["items"]) == 5
            assert first not in [x["product_id"] for x in r.json()["items"]]
            r = http.post("/recommend", json={"customer_id": "no-such-customer", "k": 4})
            assert r.json()["source"] == "trending" and not r.json()["customer_known"] and len(r.json()["items"]) == 4
            r = http.post("/recommend", json={"customer_id": None, "context_product_ids": [first]})
            assert r.json()["source"] in ("bought_together", "trending")
            assert first not in [x["product_id"] for x in r.json()["items"]]
            r = http.post("/similar_items", json={"product_id": first, "k": 3})
            assert r.status_code == 200 and r.json()["source"] in ("similar_items", "trending"), r.text
            r = http.post("/similar_items", json={"product_id": "no-such-product", "k": 3})
            assert r.json()["source"] == "trending" and r.json()["unknown_product_ids"] == ["no-such-product"]
            r = http.post("/bought_together", json={"product_ids": [first], "k": 3})
            assert r.status_code == 200 and 0 < len(r.json()["items"]) <= 3, r.text
            too_big = http.post("/recommend", json={"customer_id": cid, "k": 1000})
            assert too_big.status_code == 400 and "maximum per request" in too_big.text
            bad_cat = http.post("/recommend", json={"customer_id": cid, "categories": ["no-such-category"]})
            assert bad_cat.status_code == 400 and "no-such-category" in bad_cat.text
            assert http.post("/recommend", json={"customer_id": cid, "list": "nope"}).status_code == 400
        # the access log (on in this shop's config, off by default): a line per request with its path and
        # status, never the API key or the request body (customer ids in a path, as /customers/{id}, at most)
        log = server.log.read_text()
        assert "method=POST,path=/churn" in log and "status=200" in log and "status=401" in log
        assert "k-two" not in log and "k-one" not in log and "no-such-product" not in log
    finally:
        assert stop_background(ws)


def _wait_for(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError("condition not reached in time")


def test_hot_reload_follows_the_champion_and_refuses_a_broken_one(shop, monkeypatch):
    cfg, root = shop
    server = serve(cfg, monkeypatch, "k")
    url, _log, settings, ws = server.url, server.log, server.settings, server.ws
    client = configure(settings, ws)
    current = get_alias(client, CHURN_MODEL, CHAMPION)
    mv = client.get_model_version(CHURN_MODEL, str(current.version))
    cid = pd.read_parquet(root / "out" / "churn.parquet")["customer_id"].iloc[0]
    statuses: list[int] = []
    stop = threading.Event()

    def traffic() -> None:  # requests keep coming while the models change under them
        with httpx.Client(base_url=url, timeout=10, headers={"X-API-Key": "k"}) as c:
            while not stop.is_set():
                statuses.append(c.post("/churn", json={"customer_ids": [cid]}).status_code)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        with httpx.Client(base_url=url, timeout=10, headers={"X-API-Key": "k"}) as http:
            # a version that cannot serve (no feature list) is refused; the old one keeps answering
            bad = client.create_model_version(CHURN_MODEL, mv.source, run_id=mv.run_id, tags={})
            client.set_registered_model_alias(CHURN_MODEL, CHAMPION, bad.version)
            info = _wait_for(lambda: (i := http.get("/model_info").json())["refused"] and i)
            assert info["refused"]["versions"]["churn"] == int(bad.version) and "feature_refs" in info["refused"]["reason"]
            assert info["models"]["churn"]["version"] == current.version
            # a good new champion is picked up without a restart
            good = client.create_model_version(CHURN_MODEL, mv.source, run_id=mv.run_id, tags=mv.tags)
            client.set_registered_model_alias(CHURN_MODEL, CHAMPION, good.version)
            _wait_for(lambda: http.get("/model_info").json()["models"]["churn"]["version"] == int(good.version))
            assert http.post("/churn", json={"customer_ids": [cid]}).json()["model"]["version"] == int(good.version)
            # every worker process reloads on its own: new connections reach them all, all on the new version
            workers: dict[int, int] = {}

            def every_worker_reloaded() -> bool:
                for _ in range(8):
                    with httpx.Client(base_url=url, timeout=10, headers={"X-API-Key": "k"}) as fresh:
                        info = fresh.get("/model_info").json()
                    workers[info["worker_pid"]] = info["models"]["churn"]["version"]
                return len(workers) == settings.serving.workers and set(workers.values()) == {int(good.version)}

            try:
                _wait_for(every_worker_reloaded, timeout=120.0)
            except AssertionError:
                raise AssertionError(f"champion version by worker pid: {workers}, want {settings.serving.workers} "
                                     f"workers on version {good.version}; see {_log}") from None
    finally:
        stop.set()
        worker.join()
        client.set_registered_model_alias(CHURN_MODEL, CHAMPION, str(current.version))
        assert stop_background(ws)
    assert statuses and set(statuses) == {200}  # no failed request during either change


def test_score_as_of_an_earlier_date_recomputes_the_lists(shop):
    """Runs last: it moves the online snapshot and the served lists to the earlier date."""
    cfg, root = shop
    out = root / "out-earlier"
    res = CliRunner().invoke(app, ["--config", str(cfg), "score", "--as-of", "2023-08-01", "--out", str(out)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "recommendation lists as of 2023-08-01" in res.output
    churn = pd.read_parquet(out / "churn.parquet")
    recs = pd.read_parquet(out / "recommendations.parquet")
    assert set(recs["customer_id"]) == set(churn["customer_id"])
    orders = Workspace(root / "ws").read_table("orders")
    later = orders[orders["ordered_at"] >= pd.Timestamp("2023-08-01", tz="UTC")]
    first_seen_later = set(later["customer_id"].dropna()) - set(orders.loc[orders["ordered_at"] < pd.Timestamp("2023-08-01", tz="UTC"), "customer_id"].dropna())
    assert not first_seen_later & set(recs["customer_id"])  # nobody from the future
    # the service serves what the batch wrote: the refreshed lists of the same model version
    from serving.batch import load_recommender

    model, info = load_recommender(load_settings(cfg), Workspace(root / "ws"))
    assert model.as_of_ == pd.Timestamp("2023-08-01", tz="UTC")
    cid = recs["customer_id"].iloc[0]
    assert [r.product_id for r in model.recommend(cid, 10)] == recs.loc[recs["customer_id"] == cid, "product_id"].tolist()
