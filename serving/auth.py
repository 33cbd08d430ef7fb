"""API-key authentication of the HTTP service (an ASGI middleware).

Every request except the health, readiness, metrics and documentation paths needs the header
``X-API-Key`` holding one of the configured keys. Keys come from the environment variable
``ECRM_API_KEYS`` (comma-separated) and from ``serving.api_keys_file`` (one key per line, ``#``
comments). They are compared in constant time and never logged. ``serving.auth: false`` or the
environment variable ``ECRM_AUTH=off`` (what ``ecrm demo`` sets for its local server) turns it off.
"""

from __future__ import annotations

import hmac
import json
import os
from pathlib import Path

from configs.settings import Settings

HEADER = b"x-api-key"
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/", "/docs"})


def auth_enabled(settings: Settings) -> bool:
    """Whether requests need an API key (config, unless ``ECRM_AUTH=off``)."""
    return settings.serving.auth and os.environ.get("ECRM_AUTH", "").lower() not in ("off", "0", "false", "no")


def load_api_keys(settings: Settings) -> list[bytes] | None:
    """The accepted keys, or None when authentication is off; ValueError when it is on without keys."""
    if not auth_enabled(settings):
        return None
    keys = [k.strip() for k in os.environ.get("ECRM_API_KEYS", "").split(",") if k.strip()]
    path = settings.serving.api_keys_file
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"serving.api_keys_file: {path} does not exist")
        keys += [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if not keys:
        raise ValueError("API-key authentication is on (serving.auth) but no key is configured: set ECRM_API_KEYS "
                         "(comma-separated) or serving.api_keys_file, or turn it off with serving.auth: false")
    return [k.encode() for k in keys]


def _matches(given: bytes, keys: list[bytes]) -> bool:
    ok = False
    for key in keys:  # every key is compared, each in constant time
        ok |= hmac.compare_digest(given, key)
    return ok


class ApiKeyMiddleware:
    """Rejects requests without a valid ``X-API-Key`` with 401 and a JSON body."""

    def __init__(self, app, keys: list[bytes] | None = None, settings: Settings | None = None) -> None:
        from configs.settings import load_settings

        self.app = app
        self.keys = keys if keys is not None else load_api_keys(settings or load_settings())

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or self.keys is None or scope.get("path", "") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers", []) if k.lower() == HEADER), None)
        if given is not None and _matches(given, self.keys):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "unauthorized",
                           "detail": "missing or invalid API key: send it in the X-API-Key header"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b"ApiKey")]})
        await send({"type": "http.response.body", "body": body})
