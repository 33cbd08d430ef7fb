"""One shape for every error answer of the service: ``{"error": CODE, "detail": MESSAGE}`` (JSON).

Errors come from several places, each with its own body: our handlers and middlewares already answer
``{"error", "detail"}``; BentoML answers a failed body validation with ``{"error": "N validation errors for
X", "detail": [pydantic errors]}`` and an ``InvalidArgument`` / ``NotFound`` with a JSON *list*
``[{"error": message}]``; FastAPI and Starlette answer unknown paths and methods with ``{"detail": "Not
Found"}`` or plain text. :class:`ErrorBodyMiddleware` rewrites every 4xx/5xx answer passing through it
into the one shape (a validation error keeps the field-level problems in ``errors``). Successful
answers pass through untouched: the middleware only looks at the status line.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         408: "request_timeout", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
         422: "bad_request", 429: "too_many_requests", 500: "internal_error", 503: "service_unavailable",
         504: "timeout"}


def error_code(status: int) -> str:
    """The ``error`` code of a status without a more specific one."""
    return CODES.get(status, "server_error" if status >= 500 else "client_error")


def _location(err: dict) -> str:
    loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path")]
    return ".".join(loc) or "body"


def validation_message(errors: list[dict]) -> str:
    """Pydantic's error list in one line: ``field: problem; field: problem``."""
    return "; ".join(f"{_location(e)}: {e.get('msg', 'invalid')}" for e in errors) or "invalid request"


def normalize(status: int, body: bytes) -> dict:
    """The ``{"error", "detail"}`` body for an error answer with this status and original body."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = body.decode("utf-8", "replace").strip() or None
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        data = data[0]  # BentoML's InvalidArgument / NotFound answer: [{"error": message}]
    if isinstance(data, dict):
        error, detail = data.get("error"), data.get("detail")
        if isinstance(detail, list):  # pydantic's errors (BentoML's body validation, FastAPI's 422)
            fields = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in detail if isinstance(e, dict)]
            return {"error": "invalid_request", "detail": validation_message(fields), "errors": fields}
        if isinstance(error, str) and isinstance(detail, str):  # already ours
            return {"error": error, "detail": detail, **({"errors": data["errors"]} if "errors" in data else {})}
        message = detail if isinstance(detail, str) else error if isinstance(error, str) else None
        return {"error": error_code(status), "detail": message or error_code(status).replace("_", " ")}
    if isinstance(data, str):
        return {"error": error_code(status), "detail": data}
    return {"error": error_code(status), "detail": error_code(status).replace("_", " ")}


class ErrorBodyMiddleware:
    """Rewrites the body of every 4xx/5xx answer into ``{"error", "detail"}`` (see the module docstring)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "HEAD":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewriting_send(message: Message) -> None:
            nonlocal start
            if start is None:
                if message["type"] == "http.response.start" and message["status"] >= 400:
                    start = message  # hold the status line until the whole body is in
                    return
                await send(message)
                return
            if message["type"] != "http.response.body":
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            status = start["status"]
            body = json.dumps(normalize(status, b"".join(chunks))).encode()
            headers = [(k, v) for k, v in start.get("headers", [])
                       if k.lower() not in (b"content-type", b"content-length")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewriting_send)
