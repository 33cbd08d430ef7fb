"""The small synthetic shop the end-to-end tests build through the CLI, and a free loopback port."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from configs.settings import Settings, load_settings
from features.storage import Workspace
from serving.process import start_background

CONFIG = """
workspace: {ws}
synthetic: {{customers: 1500, products: 150, seed: 7, start: "2022-01-01", end: "2023-10-01"}}
churn: {{training_cutoffs: 6, horizon_days: 60}}
serving: {{max_ids_per_request: 5, reload_seconds: 1, keepalive_requests: 5, access_log: true}}
"""


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_shop(root: Path) -> tuple[Path, Path]:
    """Config file, data, trained champions and batch scores in ``root`` (workspace ``root/ws``, outputs
    ``root/out``), made through the CLI; returns (config path, root)."""
    cfg = root / "ecrm.yaml"
    cfg.write_text(CONFIG.format(ws=root / "ws"))
    runner = CliRunner()
    for args in (["data", "synthesize"], ["train"], ["score", "--out", str(root / "out")]):
        res = runner.invoke(app, ["--config", str(cfg), *args], catch_exceptions=False)
        assert res.exit_code == 0, res.output
    return cfg, root


@dataclass(frozen=True)
class RunningServer:
    """A server started by :func:`serve`: its address, log file, settings and workspace."""

    url: str
    log: Path
    settings: Settings
    ws: Workspace


def serve(cfg: Path, monkeypatch, api_keys: str, timeout: float = 120) -> RunningServer:
    """Start the server of config ``cfg`` in the background on a free port, accepting ``api_keys``
    (comma-separated; the server inherits ``ECRM_CONFIG`` and ``ECRM_API_KEYS``). Stop it with
    ``stop_background(server.ws)``."""
    monkeypatch.setenv("ECRM_CONFIG", str(cfg))
    monkeypatch.setenv("ECRM_API_KEYS", api_keys)
    settings = load_settings(cfg)
    ws = Workspace(settings.workspace)
    url, log = start_background(settings, ws, port=free_port(), timeout=timeout)
    return RunningServer(url, Path(log), settings, ws)
