"""Configuration loading and validation (configs/settings.py, configs/default.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from configs.settings import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    RedisOnlineStore,
    Settings,
    SqliteOnlineStore,
    load_settings,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("ECRM_CONFIG", raising=False)
    monkeypatch.delenv("ECRM_WORKSPACE", raising=False)


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ecrm.yaml"
    path.write_text(text)
    return path


def test_default_yaml_loads_and_matches_the_model_defaults():
    settings = load_settings()
    assert settings.workspace == Path(".ecrm")
    assert settings.churn.horizon_days == 90
    assert settings.churn.eligibility_days == 365
    assert settings.churn.risk_bands == {"high": 0.7, "medium": 0.4, "low": 0.0}
    assert isinstance(settings.feast.online_store, SqliteOnlineStore)
    assert settings.feast.offline_store.type == "duckdb"
    assert settings.serving.port == 3000
    assert settings == Settings()  # the file only spells out the defaults
    assert load_settings(DEFAULT_CONFIG_PATH) == settings


def test_settings_are_frozen():
    settings = Settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.churn.horizon_days = 30  # type: ignore[misc]


def test_partial_file_keeps_other_defaults(tmp_path):
    settings = load_settings(_yaml(tmp_path, "churn:\n  horizon_days: 60\n"))
    assert settings.churn.horizon_days == 60
    assert settings.churn.eligibility_days == 365


def test_empty_file_gives_the_defaults(tmp_path):
    assert load_settings(_yaml(tmp_path, "")) == Settings()


def test_unknown_key_names_the_key_and_the_file(tmp_path):
    path = _yaml(tmp_path, "churn:\n  horizon_dayz: 60\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in str(err.value)
    assert "churn.horizon_dayz" in str(err.value)


def test_unknown_top_level_key(tmp_path):
    path = _yaml(tmp_path, "workspaces: /tmp/x\n")
    with pytest.raises(ConfigError, match="workspaces"):
        load_settings(path)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("churn:\n  horizon_days: 0\n", "churn.horizon_days"),
        ("churn:\n  risk_bands: {high: 0.7, medium: 0.4}\n", "churn.risk_bands"),
        ("churn:\n  risk_bands: {high: 1.5, low: 0.0}\n", "churn.risk_bands"),
        ("churn:\n  risk_bands: {}\n", "churn.risk_bands"),
        ("serving:\n  port: 70000\n", "serving.port"),
        ("feast:\n  online_store: {type: memcached}\n", "feast.online_store"),
        ("synthetic:\n  start: '2024-01-01'\n  end: '2023-01-01'\n", "synthetic"),
    ],
)
def test_invalid_values_name_the_field(tmp_path, text, field):
    path = _yaml(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in str(err.value)
    assert f"{field}" in str(err.value)


def test_risk_bands_without_zero_band_message(tmp_path):
    with pytest.raises(ConfigError, match="lower bound 0.0"):
        load_settings(_yaml(tmp_path, "churn:\n  risk_bands: {high: 0.7, medium: 0.4}\n"))


def test_workspace_overrides(tmp_path, monkeypatch):
    path = _yaml(tmp_path, "workspace: /from/file\n")
    assert load_settings(path).workspace == Path("/from/file")
    monkeypatch.setenv("ECRM_WORKSPACE", str(tmp_path / "from-env"))
    assert load_settings(path).workspace == tmp_path / "from-env"
    assert load_settings(path, workspace=tmp_path / "from-arg").workspace == tmp_path / "from-arg"  # arg wins
    assert Settings(workspace=tmp_path).workspace == tmp_path


def test_ecrm_config_env_selects_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ECRM_CONFIG", str(_yaml(tmp_path, "churn:\n  horizon_days: 45\n")))
    assert load_settings().churn.horizon_days == 45


def test_redis_online_store(tmp_path):
    path = _yaml(
        tmp_path,
        "feast:\n  online_store: {type: redis, connection_string: 'redis.internal:6380,db=2'}\n",
    )
    online = load_settings(path).feast.online_store
    assert isinstance(online, RedisOnlineStore)
    assert online.connection_string == "redis.internal:6380,db=2"
    with pytest.raises(ConfigError, match="feast.online_store"):  # sqlite takes no connection string
        load_settings(_yaml(tmp_path, "feast:\n  online_store: {type: sqlite, connection_string: 'x:1'}\n"))


def test_invalid_yaml_names_the_file(tmp_path):
    path = _yaml(tmp_path, "churn: [horizon_days: 90\n")
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_settings(path)
    assert str(path) in str(err.value)


def test_top_level_must_be_a_mapping(tmp_path):
    path = _yaml(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping") as err:
        load_settings(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found") as err:
        load_settings(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(err.value)
