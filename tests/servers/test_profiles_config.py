"""The shipped profiles validate and map to the right Feast and MLflow settings; bad server settings fail
with a message naming the field. No server needed."""

from __future__ import annotations

import os
import sys

import pytest

from configs.settings import ConfigError, load_settings
from features.storage import Workspace
from features.store import repo_config
from tests.servers.profiles import PROFILES
from training.registry import artifact_location, tracking_uri

EXPECTED = {  # profile -> (online store, offline store, tracking uri scheme)
    "redis": ("redis", "duckdb", None),
    "postgres": ("sqlite", "duckdb", "postgresql+psycopg"),
    "spark": ("sqlite", "spark", None),
    "servers": ("redis", "spark", "postgresql+psycopg"),
}


@pytest.mark.parametrize("profile", sorted(EXPECTED))
def test_profiles_validate(profile):
    settings = load_settings(PROFILES / f"{profile}.yaml")
    online, offline, scheme = EXPECTED[profile]
    assert settings.feast.online_store.type == online
    assert settings.feast.offline_store.type == offline
    assert (settings.mlflow.tracking_uri or "").partition("://")[0] == (scheme or "")
    if offline == "spark":
        assert settings.feast.offline_store.spark_conf["spark.sql.session.timeZone"] == "UTC"


def test_every_profile_is_tested():
    assert sorted(p.stem for p in PROFILES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("body, message", [
    ('feast: {online_store: {type: redis, connection_string: "redis://127.0.0.1:6379"}}', "not a URL"),
    ('feast: {online_store: {type: redis, connection_string: "localhost"}}', "must start with HOST:PORT"),
    ("feast: {offline_store: {type: spark, spark_conf: {spark.sql.session.timeZone: Europe/Berlin}}}",
     "must be UTC"),
    ("feast: {offline_store: {type: bigquery}}", "offline_store"),
    ("mlflow: {tracking_uri: x, artifact_loc: y}", "artifact_loc"),
])
def test_bad_server_settings_name_the_field(tmp_path, body, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(body)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg)


def test_tracking_uri_and_artifacts(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ws = Workspace(tmp_path)
    settings = load_settings(PROFILES / "postgres.yaml", workspace=tmp_path)
    uri = tracking_uri(settings, ws)
    assert uri == settings.mlflow.tracking_uri
    assert artifact_location(settings, ws, uri) == (ws.mlflow_dir / "artifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://u:p@db:5432/mlflow")  # the environment wins
    if "psycopg2" not in sys.modules:
        monkeypatch.setitem(sys.modules, "psycopg2", None)  # as on a machine without psycopg2
        assert tracking_uri(settings, ws) == "postgresql+psycopg://u:p@db:5432/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert artifact_location(settings, ws, tracking_uri(settings, ws)) is None  # the server decides
    shared = settings.model_copy(update={"mlflow": settings.mlflow.model_copy(update={"artifact_location": "s3://b/e"})})
    assert artifact_location(shared, ws, "postgresql+psycopg://db/mlflow") == "s3://b/e"


def test_spark_profile_without_pyspark_says_how_to_install(tmp_path, monkeypatch):
    settings = load_settings(PROFILES / "spark.yaml", workspace=tmp_path)
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as in the default install
    with pytest.raises(ConfigError, match="--extra spark"):
        repo_config(settings, Workspace(tmp_path))


def test_redis_profile_repo_config(tmp_path):
    cfg = repo_config(load_settings(PROFILES / "redis.yaml", workspace=tmp_path), Workspace(tmp_path))
    assert cfg.online_store.type == "redis" and cfg.online_store.connection_string == "127.0.0.1:6379,db=0"


def test_configure_leaves_the_environment_alone(tmp_path, monkeypatch):
    """mlflow.set_tracking_uri writes MLFLOW_TRACKING_URI; a second workspace in the same process must
    still get its own database, not the first one's."""
    from configs.settings import Settings
    from training.registry import configure

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = Settings(workspace=tmp_path / "a")
    configure(first, Workspace(first.workspace))
    assert "MLFLOW_TRACKING_URI" not in os.environ
    second = Settings(workspace=tmp_path / "b")
    client = configure(second, Workspace(second.workspace))
    assert client.tracking_uri == f"sqlite:///{Workspace(tmp_path / 'b').mlflow_dir / 'mlflow.db'}"
