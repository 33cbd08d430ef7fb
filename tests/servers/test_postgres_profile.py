"""configs/profiles/postgres.yaml against a real PostgreSQL server: training registers every model in a
PostgreSQL-backed MLflow, the champions load back through their alias, and the service serves them."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

from configs.settings import load_settings
from features.storage import Workspace
from serving.process import stop_background
from tests.e2e.shop import serve
from configs.settings import Settings
from tests.servers.profiles import profile_config, run_cli
from tests.servers.servers import mlflow_server
from training.registry import (
    CHAMPION,
    CHURN_MODEL,
    NEXT_PURCHASE_MODEL,
    SEGMENT_MODEL,
    configure,
    get_alias,
    load_model,
    register_with_alias,
)

pytestmark = [pytest.mark.servers, pytest.mark.e2e]


@pytest.fixture(scope="module")
def shop(tmp_path_factory, postgres):
    """The small shop trained and scored with MLflow in PostgreSQL (the URL as written by a user:
    plain ``postgresql://``, no driver)."""
    postgres.create_database("mlflow")
    root = tmp_path_factory.mktemp("pg-shop")
    url = postgres.url("mlflow", driver="postgresql")
    cfg = profile_config(root, "postgres", {"mlflow": {"tracking_uri": url}, "recommender": {"enabled": False}})
    for args in (["data", "synthesize"], ["train"], ["score", "--out", str(root / "out")]):
        run_cli(cfg, *args)
    return cfg, root


def test_models_are_registered_in_postgres(shop, postgres, monkeypatch):
    cfg, root = shop
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = load_settings(cfg)
    ws = Workspace(settings.workspace)
    client = configure(settings, ws)
    assert client.tracking_uri == postgres.url("mlflow")  # psycopg 3 driver chosen for postgresql://
    assert not (ws.mlflow_dir / "mlflow.db").exists()  # nothing went to the SQLite default
    for name in (CHURN_MODEL, NEXT_PURCHASE_MODEL, SEGMENT_MODEL):
        ref = get_alias(client, name, CHAMPION)
        assert ref is not None and ref.version == 1, name
    model, ref = load_model(client, CHURN_MODEL)
    assert hasattr(model, "predict_proba") and ref.aliases == (CHAMPION,)
    # the registry rows are in PostgreSQL itself; the model files in the workspace's artifact folder
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=postgres.port, user=postgres.user, dbname="mlflow") as con:
        rows = con.execute("SELECT name, alias FROM registered_model_aliases ORDER BY name").fetchall()
    assert (CHURN_MODEL, CHAMPION) in rows
    run = client.get_run(ref.run_id)
    assert run.info.artifact_uri.startswith((ws.mlflow_dir / "artifacts").as_uri())
    # the batch scored with those champions; a second train finds them in PostgreSQL and skips
    assert len(pd.read_parquet(root / "out" / "churn.parquet")) > 100
    assert "already trained on this data and config" in run_cli(cfg, "train", "--model", "churn")
    assert "ecrm-churn" in run_cli(cfg, "compare")


def test_service_loads_the_champion_from_postgres(shop, monkeypatch):
    cfg, root = shop
    churn = pd.read_parquet(root / "out" / "churn.parquet")
    server = serve(cfg, monkeypatch, "k-pg", timeout=180)
    url, ws = server.url, server.ws
    try:
        with httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": "k-pg"}) as http:
            info = http.get("/model_info").json()
            assert info["models"]["churn"]["alias"] == CHAMPION and info["models"]["churn"]["version"] == 1
            cid = churn["customer_id"].iloc[0]
            r = http.post("/churn", json={"customer_ids": [cid]})
            assert r.status_code == 200, r.text
            assert r.json()["results"][0]["churn_probability"] == pytest.approx(churn["churn_probability"].iloc[0],
                                                                                abs=1e-6)
    finally:
        assert stop_background(ws)


def test_team_mlflow_server_over_postgres(postgres, tmp_path, monkeypatch):
    """The set-up the README recommends for a team: an MLflow tracking server in front of PostgreSQL,
    serving the model files; ecrm talks to it over http only."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    postgres.create_database("mlflow_team")
    with mlflow_server(postgres.url("mlflow_team"), tmp_path / "server-artifacts") as url:
        settings = Settings.model_validate({"workspace": str(tmp_path / "ws"), "mlflow": {"tracking_uri": url}})
        ws = Workspace(settings.workspace)
        client = configure(settings, ws)
        X = np.array([[0.0], [1.0], [2.0], [3.0]])
        model = LogisticRegression().fit(X, [0, 0, 1, 1])
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
        ref, alias = register_with_alias(client, "ecrm-team-test", run.info.run_id, info.model_uri, {"k": "v"}, True)
        assert alias == CHAMPION and ref.version == 1
        loaded, got = load_model(client, "ecrm-team-test")
        np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
        assert got.aliases == (CHAMPION,)
        assert client.get_run(run.info.run_id).info.artifact_uri.startswith("mlflow-artifacts:")  # served files
        assert any((tmp_path / "server-artifacts").rglob("MLmodel"))  # stored by the server, not the client
        assert not (ws.mlflow_dir / "artifacts").exists() and not (ws.mlflow_dir / "mlflow.db").exists()
