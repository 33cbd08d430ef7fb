"""``make bench``: wall time of each demo stage and endpoint latency over sequential requests.

Runs in a fresh temporary workspace (the user's workspace is untouched) and prints a table.
Usage: python -m benchmarks.demo_bench [--requests N] [--customers N] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd

from cli.demo import run_demo_pipeline
from configs.settings import load_settings
from features.storage import Workspace
from serving.process import stop_background


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _stage(name: str):
    t0 = time.perf_counter()
    print(f"-- {name}", flush=True)
    yield lambda msg: print(f"   +{time.perf_counter() - t0:5.1f}s {msg}", flush=True)


def _latency(http: httpx.Client, route: str, bodies: list[dict]) -> tuple[list[float], int]:
    for body in bodies[:20]:  # warm-up
        http.post(route, json=body)
    values, errors = [], 0
    for body in bodies:
        t0 = time.perf_counter()
        r = http.post(route, json=body)
        values.append((time.perf_counter() - t0) * 1000)
        errors += r.status_code != 200
    return values, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--customers", type=int, default=None, help="synthetic customers (default from config)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ecrm-bench-"))
    settings = load_settings(workspace=root / "ws")
    ws = Workspace(settings.workspace)
    lat: dict[str, list[float]] = {}
    errors = 0
    try:
        t = time.perf_counter()
        run = run_demo_pipeline(settings, ws, _stage, port=_free_port(), customers=args.customers)
        total = time.perf_counter() - t
        ids = pd.read_parquet(run.out / "churn.parquet", columns=["customer_id"])["customer_id"]
        ids = ids.sample(n=args.requests, replace=True, random_state=0).tolist()
        one = [{"customer_ids": [c]} for c in ids]
        with httpx.Client(base_url=run.url, timeout=10) as http:
            for route in ("/churn", "/next_purchase", "/segment"):
                lat[route], e = _latency(http, route, one)
                errors += e
            lat["/recommend"], e = _latency(http, "/recommend", [{"customer_id": c, "k": 10} for c in ids])
            errors += e
    finally:
        stop_background(ws)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("\necrm demo benchmark (fresh workspace, embedded default stores, the stages of `ecrm demo`)")
    for k, v in run.seconds.items():
        print(f"  {k:<28} {v:7.1f} s")
    print(f"  {'demo total (after install)':<28} {total:7.1f} s")
    print(f"\none customer per request, {args.requests} sequential requests per endpoint ({errors} errors):")
    for route, values in lat.items():
        q = statistics.quantiles(values, n=100)
        print(f"  {route:<15} p50 {q[49]:.2f} ms   p90 {q[89]:.2f} ms   p99 {q[98]:.2f} ms   max {max(values):.2f} ms")


if __name__ == "__main__":
    main()
