"""``make loadtest``: concurrent clients against the ecrm server on loopback.

Starts the server of the workspace (``make demo`` must have run) with API-key authentication on, as in
production, then for ``--seconds`` per endpoint ``--clients`` keep-alive connections send one-customer
``/churn`` and ``/recommend`` requests back to back (random customers of the last scoring run).
Prints throughput, p50 / p99 latency, errors, the CPU the client and the server used, and the server's
memory (RSS of all its processes) before, between and after the phases.

The client (:mod:`benchmarks.loadclient`) runs on the same machine as the server and competes with it
for the cores; its CPU is printed so the numbers can be read honestly. The machine's load average is
printed too: other work on the machine depresses the numbers.

Usage: python -m benchmarks.loadtest [--seconds 60] [--clients 8] [--port P] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import socket
import tempfile
from pathlib import Path

import pandas as pd
import psutil
import yaml

from benchmarks.loadclient import LoadResult, encode_post, run_load
from configs.settings import load_settings
from features.storage import Workspace
from serving.process import launch_background, stop_background

WARM_UP_SECONDS = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_processes(ws: Workspace) -> list[psutil.Process]:
    pid = int((ws.state_dir / "server.pid").read_text().split()[0])
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _rss_mb(ws: Workspace) -> float:
    """Resident memory of the server and all its worker processes, in MiB."""
    return sum(p.memory_info().rss for p in _server_processes(ws)) / 2**20


def _cpu_seconds(ws: Workspace) -> float:
    """User + system CPU time the server's processes have used so far."""
    return sum(sum(p.cpu_times()[:2]) for p in _server_processes(ws))


def _config_with_workers(workers: int) -> Path:
    """A copy of the current config file with ``serving.workers`` replaced."""
    src = Path(os.environ.get("ECRM_CONFIG") or Path(__file__).resolve().parent.parent / "configs" / "default.yaml")
    data = yaml.safe_load(src.read_text()) or {}
    data.setdefault("serving", {})["workers"] = workers
    out = Path(tempfile.mkdtemp(prefix="ecrm-loadtest-")) / "config.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


def _line(route: str, r: LoadResult, server_cpu: float) -> str:
    codes = ", ".join(f"{k}: {v}" for k, v in sorted({**r.statuses, **r.failures}.items(), key=str) if k != 200)
    return (f"  {route:<11} {r.throughput:7.0f} req/s   p50 {r.percentile(50):6.2f} ms   p99 {r.percentile(99):6.2f} ms"
            f"   errors {r.errors}{f' ({codes})' if codes else ''}   {r.requests:,} requests in {r.seconds:.1f} s;"
            f" CPU: client {100 * r.client_cpu_seconds / r.seconds:.0f}%, server {100 * server_cpu / r.seconds:.0f}%"
            " of one core")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="duration of each endpoint's phase")
    ap.add_argument("--clients", type=int, default=8, help="concurrent keep-alive connections")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None, help="server worker processes (default: serving.workers)")
    args = ap.parse_args()
    config = _config_with_workers(args.workers) if args.workers else None
    settings = load_settings(config)
    ws = Workspace(settings.workspace)
    scores = ws.outputs_dir / "latest" / "churn.parquet"
    if not scores.is_file():
        raise SystemExit(f"{scores} not found: run `make demo` first")
    ids = pd.read_parquet(scores, columns=["customer_id"])["customer_id"].tolist()
    key = secrets.token_urlsafe(24)
    os.environ["ECRM_API_KEYS"] = key  # the server inherits the environment
    host, port = "127.0.0.1", args.port or _free_port()
    server = launch_background(settings, ws, port=port, host=host, auth=settings.serving.auth, config=config)
    server.wait(timeout=180)
    headers = {"X-API-Key": key} if settings.serving.auth else {}
    try:
        load1, load5, _ = os.getloadavg()
        print(f"server {server.url}: {settings.serving.workers} worker(s), auth {'on' if settings.serving.auth else 'off'};"
              f" {os.cpu_count()} cores, load average {load1:.2f} (1 min) {load5:.2f} (5 min) before the test")
        print(f"{args.clients} concurrent keep-alive connections, {args.seconds:.0f} s per endpoint, one customer per"
              " request, client on the same machine")
        memory = [("before", _rss_mb(ws))]
        sample = random.Random(0).sample(ids, min(len(ids), 5000))
        phases = (("/churn", lambda c: {"customer_ids": [c]}), ("/recommend", lambda c: {"customer_id": c, "k": 10}))
        for route, make in phases:
            requests = [encode_post(host, port, route, make(c), headers) for c in sample]
            run_load(host, port, requests, args.clients, WARM_UP_SECONDS)
            cpu0 = _cpu_seconds(ws)
            result = run_load(host, port, requests, args.clients, args.seconds)
            print(_line(route, result, _cpu_seconds(ws) - cpu0), flush=True)
            memory.append((f"after {route}", _rss_mb(ws)))
        load1, load5, _ = os.getloadavg()
        print("  server memory (RSS of all its processes): "
              + ", ".join(f"{mb:.0f} MiB {when}" for when, mb in memory)
              + f"; load average {load1:.2f} (1 min) {load5:.2f} (5 min) after")
    finally:
        stop_background(ws)


if __name__ == "__main__":
    main()
