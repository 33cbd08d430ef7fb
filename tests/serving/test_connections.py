"""Keep-alive limit middleware: which answers ask the client to reconnect."""

from __future__ import annotations

import asyncio

import pytest

from serving.connections import KeepAliveLimitMiddleware


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"keep-alive")]})
    await send({"type": "http.response.body", "body": b"{}"})


def _raw_headers(app, n: int, scope_type: str = "http") -> list[list[tuple[bytes, bytes]]]:
    """The response header lists of ``n`` requests through ``app``."""
    out: list[list[tuple[bytes, bytes]]] = []

    async def run():
        for _ in range(n):
            sent = []

            async def send(message):
                sent.append(message)

            await app({"type": scope_type}, None, send)
            out.append(sent[0]["headers"])

    asyncio.run(run())
    return out


def _headers(app, n: int, scope_type: str = "http") -> list[dict[bytes, bytes]]:
    return [dict(h) for h in _raw_headers(app, n, scope_type)]


def test_every_nth_answer_closes_its_connection():
    headers = _headers(KeepAliveLimitMiddleware(_app, every=3), 7)
    assert [h[b"connection"] for h in headers] == [b"keep-alive", b"keep-alive", b"close"] * 2 + [b"keep-alive"]
    assert all(h[b"content-type"] == b"application/json" for h in headers)
    raw = _raw_headers(KeepAliveLimitMiddleware(_app, every=1), 2)
    assert all([k for k, _ in h].count(b"connection") == 1 for h in raw)  # replaced, not added beside


def test_zero_never_closes_and_other_scopes_pass_through():
    assert all(h[b"connection"] == b"keep-alive" for h in _headers(KeepAliveLimitMiddleware(_app, every=0), 5))
    app = KeepAliveLimitMiddleware(_app, every=1)
    assert all(h[b"connection"] == b"keep-alive" for h in _headers(app, 3, scope_type="websocket"))


def test_negative_setting_is_refused_with_its_name():
    with pytest.raises(ValueError, match="serving.keepalive_requests"):
        KeepAliveLimitMiddleware(_app, every=-1)
