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
from pathlib import Path

import httpx
import pandas as pd

from configs.settings import load_settings
from features.storage import Workspace
from features.synthetic_stage import synthesize_into
from serving.batch import score_batch
from serving.process import start_background, stop_background
from training.churn_pipeline import train_churn
from training.next_purchase_pipeline import train_next_purchase
from training.segment_pipeline import train_segments


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--customers", type=int, default=None, help="synthetic customers (default from config)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ecrm-bench-"))
    settings = load_settings(workspace=root / "ws")
    ws = Workspace(settings.workspace)
    times: dict[str, float] = {}
    try:
        t = time.perf_counter()
        synthesize_into(settings, ws, customers=args.customers)
        times["synthesize"] = time.perf_counter() - t
        t = time.perf_counter()
        churn = train_churn(settings, ws)
        times["features + train churn"] = time.perf_counter() - t
        t = time.perf_counter()
        train_next_purchase(settings, ws, base=churn.data)
        times["train next purchase"] = time.perf_counter() - t
        t = time.perf_counter()
        train_segments(settings, ws)
        times["train segments"] = time.perf_counter() - t
        t = time.perf_counter()
        score_batch(settings, ws, ws.outputs_dir / "latest")
        times["score"] = time.perf_counter() - t
        t = time.perf_counter()
        url, _ = start_background(settings, ws, port=_free_port(), timeout=180)
        times["server start (to /readyz)"] = time.perf_counter() - t
        ids = pd.read_parquet(ws.outputs_dir / "latest" / "churn.parquet", columns=["customer_id"])["customer_id"]
        ids = ids.sample(n=args.requests, replace=True, random_state=0).tolist()
        lat: dict[str, list[float]] = {}
        errors = 0
        with httpx.Client(base_url=url, timeout=10) as http:
            for route in ("/churn", "/next_purchase", "/segment"):
                for cid in ids[:20]:  # warm-up
                    http.post(route, json={"customer_ids": [cid]})
                lat[route] = []
                for cid in ids:
                    t0 = time.perf_counter()
                    r = http.post(route, json={"customer_ids": [cid]})
                    lat[route].append((time.perf_counter() - t0) * 1000)
                    errors += r.status_code != 200
        stop_background(ws)
    finally:
        stop_background(ws)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("\necrm demo benchmark (fresh workspace, embedded default stores)")
    for k, v in times.items():
        print(f"  {k:<28} {v:7.1f} s")
    print(f"  {'demo total (after install)':<28} {sum(times.values()):7.1f} s")
    print(f"\none customer per request, {args.requests} sequential requests per endpoint ({errors} errors):")
    for route, values in lat.items():
        q = statistics.quantiles(values, n=100)
        print(f"  {route:<15} p50 {q[49]:.2f} ms   p90 {q[89]:.2f} ms   p99 {q[98]:.2f} ms   max {max(values):.2f} ms")


if __name__ == "__main__":
    main()
