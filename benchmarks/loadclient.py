"""A small, cheap HTTP/1.1 load generator for ``make loadtest``: keep-alive connections on asyncio (uvloop).

The client shares the machine with the server, so it must cost little CPU per request: every request is
encoded once up front, and a response is read by its status line and ``Content-Length`` (or chunked
framing) without a general-purpose HTTP library (httpx costs several hundred microseconds of CPU per
request, as much as the server's work).

Two ways to load the server for a fixed time:

* closed loop (``rate=None``): each connection sends requests back to back, ``connections`` requests in
  flight at most. Shows the most the server does; the latency is then mostly waiting in line
  (``connections / throughput`` on average), so it says little about a given load.
* open loop (``rate=R``): requests are due at a fixed rate of R per second whatever the server does (as
  storefront traffic arrives), sent by ``connections`` keep-alive connections in the order they are due.
  The latency of a request runs from when it was *due*, not when a free connection got to send it, so a
  server that falls behind shows it in the latency (no "coordinated omission").
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
    reconnects: int = 0  # connections the server closed with "Connection: close" (not errors)
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


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status code and whether the server closes the connection after it."""
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
    return status, b"\r\nconnection: close" in lower


class _Schedule:
    """Due times of an open-loop load: request ``i`` is due at ``start + i / rate``."""

    def __init__(self, start: float, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"the request rate must be positive, got {rate}")
        self.start, self.interval, self.issued = start, 1.0 / rate, 0

    def next_due(self) -> float:
        """The due time of the next request not yet taken by a connection."""
        due = self.start + self.issued * self.interval
        self.issued += 1
        return due


async def _connection(host: str, port: int, requests: Sequence[bytes], deadline: float, seed: int,
                      result: LoadResult, schedule: _Schedule | None = None) -> None:
    rng = random.Random(seed)
    clock = time.perf_counter
    lat, statuses = result.latencies_ms, result.statuses
    reader = writer = None
    while clock() < deadline:
        try:
            if schedule is not None:  # open loop: wait until the next request is due, time it from then
                t0 = schedule.next_due()
                if t0 >= deadline:
                    break
                if t0 > clock():
                    await asyncio.sleep(t0 - clock())
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            if schedule is None:
                t0 = clock()
            writer.write(rng.choice(requests))
            status, closing = await _read_response(reader)
            lat.append((clock() - t0) * 1000.0)
            statuses[status] += 1
            if closing:  # the server asked for a new connection (serving.keepalive_requests): reconnect
                result.reconnects += 1
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            result.failures[type(exc).__name__] += 1  # counted as an error, not as a latency
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def _run(host: str, port: int, requests: Sequence[bytes], connections: int, seconds: float,
               rate: float | None) -> LoadResult:
    result = LoadResult(seconds=seconds)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    deadline = t0 + seconds
    schedule = None if rate is None else _Schedule(t0, rate)
    await asyncio.gather(*(_connection(host, port, requests, deadline, seed, result, schedule)
                           for seed in range(connections)))
    result.seconds = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    result.client_cpu_seconds = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return result


def run_load(host: str, port: int, requests: Sequence[bytes], connections: int, seconds: float,
             rate: float | None = None) -> LoadResult:
    """``connections`` keep-alive connections sending randomly chosen ``requests`` for ``seconds``: back to
    back (``rate=None``), or ``rate`` requests per second in all, each timed from when it was due; on uvloop
    when it is installed (it comes with BentoML)."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - plain asyncio works, with more client CPU per request
        runner = asyncio.run
    return runner(_run(host, port, requests, connections, seconds, rate))
