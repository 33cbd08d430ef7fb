"""The small synthetic shop the end-to-end tests build through the CLI, and a free loopback port."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

CONFIG = """
workspace: {ws}
synthetic: {{customers: 1500, products: 150, seed: 7, start: "2022-01-01", end: "2023-10-01"}}
churn: {{training_cutoffs: 6, horizon_days: 60}}
serving: {{max_ids_per_request: 5, reload_seconds: 1, keepalive_requests: 5}}
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
