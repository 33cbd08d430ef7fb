"""Request body size limit of the HTTP service (an ASGI middleware): 413 with a JSON message."""

from __future__ import annotations

import json


class BodyLimitMiddleware:
    """Rejects bodies larger than ``max_bytes`` (by Content-Length, or while reading a chunked body)."""

    def __init__(self, app, max_bytes: int | None = None) -> None:
        if max_bytes is None:
            from configs.settings import load_settings

            max_bytes = load_settings().serving.max_body_bytes
        self.app = app
        self.max_bytes = int(max_bytes)

    async def _reject(self, send, size: str) -> None:
        body = json.dumps({"error": "payload_too_large",
                           "detail": f"request body is {size}; the maximum is {self.max_bytes} bytes "
                                     "(serving.max_body_bytes)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope.get("headers", []) if k.lower() == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send, f"{int(length)} bytes")
            return
        seen = 0
        too_big = False

        async def counted():
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_big = True
                    return {"type": "http.disconnect"}
            return message

        if length is not None:  # the declared length is within the limit
            await self.app(scope, receive, send)
            return
        started = False

        async def guarded_send(message):
            nonlocal started
            if too_big and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, guarded_send)
        if too_big and not started:
            await self._reject(send, f"more than {self.max_bytes} bytes")
