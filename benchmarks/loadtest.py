"""``make loadtest``: concurrent clients against a running ecrm server on loopback.

Starts the server of the workspace (``make demo`` must have run), then for ``--seconds`` per endpoint
``--clients`` concurrent clients send one-customer ``/churn`` and ``/recommend`` requests back to back.
Prints throughput, p50 / p99 latency, errors and the server's memory (RSS of its process tree) before
and after. Usage: python -m benchmarks.loadtest [--seconds 60] [--clients 8] [--port P]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import time

import httpx
import pandas as pd
import psutil

from configs.settings import load_settings
from features.storage import Workspace
from serving.process import start_background, stop_background


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(ws: Workspace) -> float:
    pid = int((ws.state_dir / "server.pid").read_text().split()[0])
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


async def _run(url: str, route: str, bodies: list[dict], clients: int, seconds: float) -> tuple[list[float], int]:
    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    r = await http.post(route, json=rng.choice(bodies))
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                lat.append((time.perf_counter() - t0) * 1000)
                errors += not ok

    await asyncio.gather(*(client(i) for i in range(clients)))
    return lat, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--port", type=int, default=None)
    args = ap.parse_args()
    settings = load_settings()
    ws = Workspace(settings.workspace)
    scores = ws.outputs_dir / "latest" / "churn.parquet"
    if not scores.is_file():
        raise SystemExit(f"{scores} not found: run `make demo` first")
    ids = pd.read_parquet(scores, columns=["customer_id"])["customer_id"].tolist()
    url, _ = start_background(settings, ws, port=args.port or _free_port(), timeout=180, auth=False)
    try:
        print(f"server {url}; {args.clients} concurrent clients, {args.seconds:.0f} s per endpoint, one customer per request")
        before = _rss_mb(ws)
        for route, make in (("/churn", lambda c: {"customer_ids": [c]}), ("/recommend", lambda c: {"customer_id": c, "k": 10})):
            bodies = [make(c) for c in random.Random(0).sample(ids, min(len(ids), 5000))]
            asyncio.run(_run(url, route, bodies, args.clients, 3.0))  # warm-up
            t0 = time.perf_counter()
            lat, errors = asyncio.run(_run(url, route, bodies, args.clients, args.seconds))
            took = time.perf_counter() - t0
            q = statistics.quantiles(lat, n=100)
            print(f"  {route:<11} {len(lat) / took:7.0f} req/s   p50 {q[49]:6.2f} ms   p99 {q[98]:6.2f} ms   "
                  f"errors {errors}")
        after = _rss_mb(ws)
        print(f"  server memory (RSS of its processes): {before:.0f} MB before, {after:.0f} MB after")
    finally:
        stop_background(ws)


if __name__ == "__main__":
    main()
