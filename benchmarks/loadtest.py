"""``make loadtest``: concurrent clients against the ecrm server on loopback.

Starts the server of the workspace (``make demo`` must have run) with API-key authentication on, as in
production, then per endpoint (one-customer ``/churn`` and ``/recommend`` requests, random customers of
the last scoring run) runs two phases of ``--seconds`` each over ``--clients`` keep-alive connections:

* ``closed``: requests back to back, the most the server does (its latency is mostly waiting in line);
* ``open``: ``--rate`` requests per second due at fixed times (the target load, 500/s), each timed from
  when it was due, so falling behind shows in the latency (see :mod:`benchmarks.loadclient`).

Prints throughput, p50 / p99 latency, errors, the CPU the client and each server process used, and the
server's memory (RSS of all its processes) before, between and after the phases; then whether the
target of ``/churn`` was met (the open phase: at least ``--rate`` answered per second with p99 under
25 ms and no error).

The client (:mod:`benchmarks.loadclient`) runs on the same machine as the server and competes with it
for the cores; its CPU is printed so the numbers can be read honestly. The machine's load average is
printed too: other work on the machine depresses the numbers.

Usage: python -m benchmarks.loadtest [--seconds 60] [--clients 8] [--rate 500] [--port P] [--workers N]
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
TARGET_P99_MS = 25.0


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


def _cpu_by_process(ws: Workspace) -> dict[int, float]:
    """User + system CPU time each of the server's processes has used so far, by pid."""
    return {p.pid: sum(p.cpu_times()[:2]) for p in _server_processes(ws)}


def _spread(before: dict[int, float], after: dict[int, float], seconds: float) -> str:
    """The busiest server processes' share of one core during a phase (shows how the workers shared the load)."""
    busy = sorted(((after[pid] - before.get(pid, 0.0)) / seconds for pid in after), reverse=True)
    return " + ".join(f"{100 * b:.0f}%" for b in busy if b >= 0.02)


def _config_with_workers(workers: int) -> Path:
    """A copy of the current config file with ``serving.workers`` replaced."""
    src = Path(os.environ.get("ECRM_CONFIG") or Path(__file__).resolve().parent.parent / "configs" / "default.yaml")
    data = yaml.safe_load(src.read_text()) or {}
    data.setdefault("serving", {})["workers"] = workers
    out = Path(tempfile.mkdtemp(prefix="ecrm-loadtest-")) / "config.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


def _line(route: str, r: LoadResult, server_cpu: float, spread: str) -> str:
    codes = ", ".join(f"{k}: {v}" for k, v in sorted({**r.statuses, **r.failures}.items(), key=str) if k != 200)
    return (f"  {route:<20} {r.throughput:7.0f} req/s   p50 {r.percentile(50):6.2f} ms   p99 {r.percentile(99):6.2f} ms"
            f"   errors {r.errors}{f' ({codes})' if codes else ''}   {r.requests:,} requests in {r.seconds:.1f} s;"
            f" {r.reconnects:,} reconnections asked by the server; CPU: client {100 * r.client_cpu_seconds / r.seconds:.0f}%,"
            f" server {100 * server_cpu / r.seconds:.0f}% ({spread}) of one core")


def _verdict(r: LoadResult, rate: float) -> str:
    """Whether the open-loop /churn phase met the target: ``rate`` answered per second (2% slack for the
    phase's edges), p99 under 25 ms, no error."""
    met = r.throughput >= 0.98 * rate and r.percentile(99) < TARGET_P99_MS and r.errors == 0
    return (f"  target /churn at {rate:.0f}/s with p99 < {TARGET_P99_MS:.0f} ms and no error: {'MET' if met else 'NOT MET'}"
            f" ({r.throughput:.0f}/s answered, p99 {r.percentile(99):.1f} ms, {r.errors} errors)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="duration of each endpoint's phase")
    ap.add_argument("--clients", type=int, default=8, help="concurrent keep-alive connections")
    ap.add_argument("--rate", type=float, default=500.0, help="requests per second of the open-loop phase")
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
        verdicts: list[str] = []
        sample = random.Random(0).sample(ids, min(len(ids), 5000))
        phases = (("/churn", lambda c: {"customer_ids": [c]}), ("/recommend", lambda c: {"customer_id": c, "k": 10}))
        for route, make in phases:
            requests = [encode_post(host, port, route, make(c), headers) for c in sample]
            run_load(host, port, requests, args.clients, WARM_UP_SECONDS)
            for phase, rate in (("closed", None), ("open", args.rate)):
                cpu0 = _cpu_by_process(ws)
                result = run_load(host, port, requests, args.clients, args.seconds, rate)
                cpu1 = _cpu_by_process(ws)
                server_cpu = sum(cpu1.values()) - sum(cpu0.get(pid, 0.0) for pid in cpu1)
                label = f"{route} {phase}" + (f" {rate:.0f}/s" if rate else "")
                print(_line(label, result, server_cpu, _spread(cpu0, cpu1, result.seconds)), flush=True)
                if route == "/churn" and rate:
                    verdicts.append(_verdict(result, rate))
            memory.append((f"after {route}", _rss_mb(ws)))
        load1, load5, _ = os.getloadavg()
        print("  server memory (RSS of all its processes): "
              + ", ".join(f"{mb:.0f} MiB {when}" for when, mb in memory)
              + f"; load average {load1:.2f} (1 min) {load5:.2f} (5 min) after")
        print(*verdicts, sep="\n")
    finally:
        stop_background(ws)


if __name__ == "__main__":
    main()
