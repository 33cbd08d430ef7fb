"""Config files for the server tests: a shipped profile (configs/profiles/) on the e2e tests' small shop,
with the server address of the test's own server; and the CLI stages run on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from cli.main import app
from configs.settings import load_settings
from tests.e2e.shop import CONFIG

PROFILES = Path(__file__).resolve().parents[2] / "configs" / "profiles"


def _merge(base: dict, over: dict) -> dict:
    """``base`` updated by ``over``, nested mappings merged key by key."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def profile_config(root: Path, profile: str | None, overrides: dict[str, Any]) -> Path:
    """Write ``root/ecrm.yaml``: the small shop's settings, then the profile (None: the embedded default),
    then ``overrides`` (the test server's address); validate it like ``ecrm --config`` does, return its path."""
    shop = yaml.safe_load(CONFIG.format(ws=root / "ws"))
    prof = yaml.safe_load((PROFILES / f"{profile}.yaml").read_text()) if profile else {}
    prof.pop("workspace", None)
    cfg = root / "ecrm.yaml"
    cfg.write_text(yaml.safe_dump(_merge(_merge(shop, prof), overrides), sort_keys=False))
    load_settings(cfg)  # a profile that does not validate fails here, naming the field
    return cfg


def run_cli(cfg: Path, *args: str) -> str:
    """Run ``ecrm --config cfg ARGS``; assert it succeeded and return its output."""
    res = CliRunner().invoke(app, ["--config", str(cfg), *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output
