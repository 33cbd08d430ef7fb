"""The body size limit, without a server."""

from __future__ import annotations

import asyncio
import json

from serving.limits import BodyLimitMiddleware


def _run(mw: BodyLimitMiddleware, headers, chunks):
    sent, got = [], []

    async def app(scope, receive, send):
        while True:
            m = await receive()
            if m["type"] == "http.disconnect":
                return
            got.append(m.get("body", b""))
            if not m.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        return queue.pop(0)

    async def send(m):
        sent.append(m)

    mw.app = app
    asyncio.run(mw({"type": "http", "headers": headers}, receive, send))
    return sent[0]["status"], sent[1]["body"], b"".join(got)


def test_declared_length_over_the_limit_is_413_with_a_message():
    status, body, got = _run(BodyLimitMiddleware(None, 10), [(b"content-length", b"11")], [b"x" * 11])
    assert status == 413 and got == b""
    assert json.loads(body) == {"error": "payload_too_large",
                                "detail": "request body is 11 bytes; the maximum is 10 bytes (serving.max_body_bytes)"}


def test_small_and_chunked_bodies():
    assert _run(BodyLimitMiddleware(None, 10), [(b"content-length", b"10")], [b"x" * 10])[:2] == (200, b"ok")
    assert _run(BodyLimitMiddleware(None, 10), [], [b"x" * 6, b"y" * 4])[:2] == (200, b"ok")
    status, body, _ = _run(BodyLimitMiddleware(None, 10), [], [b"x" * 6, b"y" * 6])
    assert status == 413 and b"more than 10 bytes" in body
