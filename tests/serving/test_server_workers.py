"""The number of server workers: ``serving.workers`` unless the starting process overrides it (the demo)."""

from __future__ import annotations

import pytest

from features.storage import Workspace
from serving.process import server_env


def test_server_env_passes_a_worker_override_only_when_given(tmp_path, monkeypatch):
    monkeypatch.delenv("ECRM_SERVER_WORKERS", raising=False)
    ws = Workspace(tmp_path)
    assert "ECRM_SERVER_WORKERS" not in server_env(ws, auth=False)
    assert server_env(ws, auth=False, workers=1)["ECRM_SERVER_WORKERS"] == "1"


def test_workers_from_config_or_override(monkeypatch, tmp_path):
    from serving.service import _workers

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"workspace: {tmp_path / 'ws'}\nserving: {{workers: 3}}\n")
    monkeypatch.setenv("ECRM_CONFIG", str(cfg))
    monkeypatch.delenv("ECRM_SERVER_WORKERS", raising=False)
    assert _workers() == 3
    monkeypatch.setenv("ECRM_SERVER_WORKERS", "1")
    assert _workers() == 1
    monkeypatch.setenv("ECRM_SERVER_WORKERS", "two")
    with pytest.raises(ValueError, match="ECRM_SERVER_WORKERS must be a positive whole number"):
        _workers()


def test_request_tracing_and_access_log_are_off_unless_configured(monkeypatch, tmp_path):
    from opentelemetry.util.http import ExcludeList

    from serving.service import EcrmService, _observability

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"workspace: {tmp_path / 'ws'}\n")
    monkeypatch.setenv("ECRM_CONFIG", str(cfg))
    off = _observability()
    assert off == {"tracing": {"excluded_urls": [".*"]}, "logging": {"access": {"enabled": False}}}
    excluded = ExcludeList(off["tracing"]["excluded_urls"])
    for url in ("http://127.0.0.1:3000/churn", "http://10.0.0.5:8080/customers/c1?k=5", "http://h/at_risk.csv"):
        assert excluded.url_disabled(url)  # no OpenTelemetry span for any request
    # what the service was declared with (the tests run the default configuration)
    assert EcrmService.config["tracing"] == off["tracing"] and EcrmService.config["logging"] == off["logging"]
    cfg.write_text(f"workspace: {tmp_path / 'ws'}\nserving: {{request_tracing: true, access_log: true}}\n")
    assert _observability() == {"tracing": {}, "logging": {"access": {"enabled": True}}}  # BentoML's tracing config


def test_server_env_passes_a_reload_override_only_when_given(tmp_path, monkeypatch):
    monkeypatch.delenv("ECRM_SERVER_RELOAD_SECONDS", raising=False)
    ws = Workspace(tmp_path)
    assert "ECRM_SERVER_RELOAD_SECONDS" not in server_env(ws, auth=False)
    assert server_env(ws, auth=False, reload_seconds=1)["ECRM_SERVER_RELOAD_SECONDS"] == "1.0"


def test_reload_seconds_from_config_or_override(monkeypatch):
    from serving.service import _reload_seconds

    monkeypatch.delenv("ECRM_SERVER_RELOAD_SECONDS", raising=False)
    assert _reload_seconds(30.0) == 30.0
    monkeypatch.setenv("ECRM_SERVER_RELOAD_SECONDS", "1.0")
    assert _reload_seconds(30.0) == 1.0
    monkeypatch.setenv("ECRM_SERVER_RELOAD_SECONDS", "0")
    assert _reload_seconds(30.0) == 0.0
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("ECRM_SERVER_RELOAD_SECONDS", bad)
        with pytest.raises(ValueError, match="ECRM_SERVER_RELOAD_SECONDS must be a number of seconds >= 0"):
            _reload_seconds(30.0)
