"""End to end on a small synthetic shop: CLI stages, then the real BentoML server over HTTP."""

from __future__ import annotations

import json
import socket

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from configs.settings import load_settings
from features.storage import Workspace
from serving.process import start_background, stop_background

pytestmark = pytest.mark.e2e

CONFIG = """
workspace: {ws}
synthetic: {{customers: 1500, products: 150, seed: 7, start: "2022-01-01", end: "2023-10-01"}}
churn: {{training_cutoffs: 6, horizon_days: 60}}
serving: {{max_ids_per_request: 5}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A workspace with data, a trained champion and batch scores, made through the CLI."""
    root = tmp_path_factory.mktemp("e2e")
    cfg = root / "ecrm.yaml"
    cfg.write_text(CONFIG.format(ws=root / "ws"))
    runner = CliRunner()
    base = ["--config", str(cfg)]
    for args in (["data", "synthesize"], ["train"], ["score", "--out", str(root / "out")]):
        res = runner.invoke(app, base + args, catch_exceptions=False)
        assert res.exit_code == 0, res.output
    return cfg, root


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


def test_http_service(shop, monkeypatch):
    cfg, root = shop
    monkeypatch.setenv("ECRM_CONFIG", str(cfg))
    settings = load_settings(cfg)
    ws = Workspace(settings.workspace)
    url, _log = start_background(settings, ws, port=_free_port(), timeout=120)
    try:
        churn = pd.read_parquet(root / "out" / "churn.parquet")
        known = churn["customer_id"].head(3).tolist()
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/readyz").status_code == 200
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
    finally:
        assert stop_background(ws)
