"""Every error answer gets the body {"error", "detail"}: the normalization and its middleware, without a server."""

from __future__ import annotations

import asyncio
import json

import pytest

from serving.errors import ErrorBodyMiddleware, normalize, validation_message


@pytest.mark.parametrize(("status", "body", "want"), [
    # BentoML's InvalidArgument / NotFound: a JSON list holding one object
    (400, b'[{"error": "k is 1000; the maximum per request is 100"}]',
     {"error": "bad_request", "detail": "k is 1000; the maximum per request is 100"}),
    (404, b'[{"error": "no ecrm-recommender model"}]', {"error": "not_found", "detail": "no ecrm-recommender model"}),
    # FastAPI / Starlette
    (404, b'{"detail": "Not Found"}', {"error": "not_found", "detail": "Not Found"}),
    (405, b"Method Not Allowed", {"error": "method_not_allowed", "detail": "Method Not Allowed"}),
    (500, b'{"error": "An unexpected error has occurred, please check the server log."}',
     {"error": "internal_error", "detail": "An unexpected error has occurred, please check the server log."}),
    (502, b"", {"error": "server_error", "detail": "server error"}),
    # already ours: unchanged
    (503, b'{"error": "online_store_unavailable", "detail": "down"}', {"error": "online_store_unavailable", "detail": "down"}),
])
def test_normalize(status, body, want):
    assert normalize(status, body) == want


def test_validation_errors_keep_each_problem_and_read_as_one_message():
    body = json.dumps({"error": "2 validation errors for CustomerIdsRequest", "detail": [
        {"type": "list_type", "loc": ["customer_ids"], "msg": "Input should be a valid array", "url": "https://x"},
        {"type": "extra_forbidden", "loc": ["ids", 0], "msg": "Extra inputs are not permitted"}]}).encode()
    got = normalize(400, body)
    assert got["error"] == "invalid_request"
    assert got["detail"] == "customer_ids: Input should be a valid array; ids.0: Extra inputs are not permitted"
    assert got["errors"][0] == {"type": "list_type", "loc": ["customer_ids"], "msg": "Input should be a valid array"}
    assert validation_message([{"loc": ["query", "min_probability"], "msg": "bad"}]) == "min_probability: bad"
    assert validation_message([{"loc": [], "msg": "Invalid JSON"}]) == "body: Invalid JSON"


def _through(status: int, chunks: list[bytes], method: str = "POST", headers=None):
    sent = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status,
                    "headers": headers or [(b"content-type", b"text/plain"), (b"x-keep", b"1")]})
        for i, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1})

    async def send(message):
        sent.append(message)

    asyncio.run(ErrorBodyMiddleware(app)({"type": "http", "method": method}, None, send))
    return sent


def test_middleware_rewrites_error_bodies_and_their_headers():
    sent = _through(404, [b"Not ", b"Found"])
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    headers = dict(sent[0]["headers"])
    body = sent[1]["body"]
    assert sent[0]["status"] == 404 and headers[b"content-type"] == b"application/json" and headers[b"x-keep"] == b"1"
    assert int(headers[b"content-length"]) == len(body)
    assert json.loads(body) == {"error": "not_found", "detail": "Not Found"}


def test_middleware_passes_successful_answers_untouched():
    sent = _through(200, [b"a", b"b"], headers=[(b"content-type", b"text/csv")])
    assert sent[0] == {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/csv")]}
    assert [m["body"] for m in sent[1:]] == [b"a", b"b"]
