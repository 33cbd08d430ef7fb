"""API-key settings and the middleware, without a server."""

from __future__ import annotations

import asyncio

import pytest

from configs.settings import Settings
from serving.auth import ApiKeyMiddleware, load_api_keys


def _settings(tmp_path, **serving) -> Settings:
    return Settings.model_validate({"workspace": str(tmp_path), "serving": serving})


def test_keys_from_environment_and_file(tmp_path, monkeypatch):
    keys = tmp_path / "keys.txt"
    keys.write_text("# team keys\nfile-key\n\n")
    monkeypatch.setenv("ECRM_API_KEYS", " env-a, env-b ,")
    monkeypatch.delenv("ECRM_AUTH", raising=False)
    assert load_api_keys(_settings(tmp_path, api_keys_file=str(keys))) == [b"env-a", b"env-b", b"file-key"]


def test_auth_on_without_keys_is_a_clear_error_and_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.delenv("ECRM_API_KEYS", raising=False)
    monkeypatch.delenv("ECRM_AUTH", raising=False)
    with pytest.raises(ValueError, match="no key is configured: set ECRM_API_KEYS"):
        load_api_keys(_settings(tmp_path))
    with pytest.raises(ValueError, match="api_keys_file: .*missing.txt does not exist"):
        load_api_keys(_settings(tmp_path, api_keys_file=str(tmp_path / "missing.txt")))
    assert load_api_keys(_settings(tmp_path, auth=False)) is None
    monkeypatch.setenv("ECRM_AUTH", "off")
    assert load_api_keys(_settings(tmp_path)) is None


def _call(mw: ApiKeyMiddleware, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    sent: list[dict] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message):
        sent.append(message)

    mw.app = app
    asyncio.run(mw({"type": "http", "path": path, "headers": headers}, None, send))
    return sent[0]["status"], sent[1]["body"]


def test_middleware_checks_the_header_except_on_open_paths():
    mw = ApiKeyMiddleware(None, keys=[b"secret-1", b"secret-2"])
    assert _call(mw, "/churn", [(b"x-api-key", b"secret-2")]) == (200, b"ok")
    status, body = _call(mw, "/churn", [(b"x-api-key", b"secret-3")])
    assert status == 401 and b"X-API-Key" in body and b"secret" not in body
    assert _call(mw, "/churn", [])[0] == 401
    assert _call(mw, "/healthz", []) == (200, b"ok")
    assert _call(mw, "/readyz", []) == (200, b"ok")
