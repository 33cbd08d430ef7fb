"""A small, cheap HTTP/1.1 load generator for ``make loadtest``: keep-alive connections on asyncio (uvloop).

The client shares the machine with the server, so it must cost little CPU per request: every request is
encoded once up front, and a response is read by its status line and ``Content-Length`` (or chunked
framing) without a general-purpose HTTP library (httpx costs several hundred microseconds of CPU per
request, as much as the server's work). Each connection sends requests back to back (a closed loop:
``connections`` requests in flight at most) for a fixed time; the latency of a request is from its
first byte written to its last byte read.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    """What one load phase measured."""

    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)  # connection-level problems, by exception name
    client_cpu_seconds: float = 0.0

    @property
    def requests(self) -> int:
        """Requests answered (any status)."""
        return len(self.latencies_ms)

    @property
    def errors(self) -> int:
        """Requests without a 200 answer (other statuses and broken connections)."""
        return sum(n for status, n in self.statuses.items() if status != 200) + sum(self.failures.values())

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile latency in ms (nearest rank)."""
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def encode_post(host: str, port: int, path: str, body: dict, headers: dict[str, str] | None = None) -> bytes:
    """A complete keep-alive ``POST`` request with a JSON body, as bytes."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
             f"Content-Length: {len(payload)}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one response; return its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.index(b"\r\n", at + 2)
        await reader.readexactly(int(lower[at + 17:end]))
    elif b"\r\ntransfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _connection(host: str, port: int, requests: Sequence[bytes], deadline: float, seed: int,
                      result: LoadResult) -> None:
    rng = random.Random(seed)
    clock = time.perf_counter
    lat, statuses = result.latencies_ms, result.statuses
    reader = writer = None
    while clock() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            t0 = clock()
            writer.write(rng.choice(requests))
            status = await _read_response(reader)
            lat.append((clock() - t0) * 1000.0)
            statuses[status] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            result.failures[type(exc).__name__] += 1  # counted as an error, not as a latency
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def _run(host: str, port: int, requests: Sequence[bytes], connections: int, seconds: float) -> LoadResult:
    result = LoadResult(seconds=seconds)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    deadline = t0 + seconds
    await asyncio.gather(*(_connection(host, port, requests, deadline, seed, result) for seed in range(connections)))
    result.seconds = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    result.client_cpu_seconds = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return result


def run_load(host: str, port: int, requests: Sequence[bytes], connections: int, seconds: float) -> LoadResult:
    """``connections`` keep-alive connections, each sending randomly chosen ``requests`` back to back for
    ``seconds``; on uvloop when it is installed (it comes with BentoML)."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - plain asyncio works, with more client CPU per request
        runner = asyncio.run
    return runner(_run(host, port, requests, connections, seconds))
