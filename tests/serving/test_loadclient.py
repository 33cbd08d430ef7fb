"""The load generator of ``make loadtest`` against a tiny local HTTP server: framing, statuses, errors."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from benchmarks.loadclient import encode_post, run_load

ANSWERS = {b"/ok": b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{\"ok\": true}",
           b"/slow": b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
           b"/bye": b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}",
           b"/chunked": b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n"}


def _serve(sock: socket.socket, stop: threading.Event) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                path = head.split(b" ")[1]
                if path == b"/close":
                    break  # drop the connection without an answer
                if path == b"/slow":
                    await asyncio.sleep(0.05)  # 3 connections: at most 60 answers/s
                writer.write(ANSWERS[path])
                await writer.drain()
                if path == b"/bye":
                    break  # as announced by "connection: close"
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, sock=sock)
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.close()

    asyncio.run(main())


def _load(path: str, seconds: float = 0.3, rate: float | None = None):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(sock, stop))
    thread.start()
    try:
        return run_load("127.0.0.1", port, [encode_post("127.0.0.1", port, path, {"customer_ids": ["C1"]})], 3, seconds,
                        rate)
    finally:
        stop.set()
        thread.join()


def test_encoded_request_is_complete_http():
    raw = encode_post("h", 1, "/churn", {"customer_ids": ["C1"]}, {"X-API-Key": "k"})
    head, body = raw.split(b"\r\n\r\n")
    assert head.startswith(b"POST /churn HTTP/1.1\r\n") and b"X-API-Key: k" in head
    assert body == b'{"customer_ids":["C1"]}' and f"Content-Length: {len(body)}".encode() in head


def test_keep_alive_answers_are_counted_with_latencies():
    r = _load("/ok")
    assert r.requests > 10 and r.errors == 0 and r.statuses == {200: r.requests}
    assert 0 < r.percentile(50) <= r.percentile(99) and r.throughput > 0 and r.client_cpu_seconds > 0


def test_other_statuses_and_dropped_connections_are_errors():
    r = _load("/chunked")
    assert r.requests > 10 and r.errors == r.requests and set(r.statuses) == {503}
    dropped = _load("/close", seconds=0.2)
    assert dropped.requests == 0 and dropped.errors > 0 and dropped.failures


def test_connection_close_answers_reconnect_without_errors():
    r = _load("/bye")
    assert r.requests > 10 and r.errors == 0 and r.statuses == {200: r.requests}
    assert r.reconnects == r.requests  # every answer closed its connection, and each was followed by a new one


def test_open_loop_sends_at_the_rate_and_times_from_when_requests_were_due():
    r = _load("/ok", seconds=0.5, rate=200)
    assert 95 <= r.requests <= 100 and r.errors == 0  # due at 0, 5, ..., 495 ms
    closed = _load("/slow", seconds=0.5)
    late = _load("/slow", seconds=0.5, rate=100)  # 100 due per second, 60 answered: each waits longer
    assert 40 <= closed.percentile(99) < 100
    assert late.percentile(99) > 2 * closed.percentile(99) and late.requests < 50


def test_open_loop_rate_must_be_positive():
    with pytest.raises(ValueError, match="rate must be positive"):
        _load("/ok", rate=0)
