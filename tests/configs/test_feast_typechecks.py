"""configs.runtime.skip_feast_typechecks: importing ecrm's features package before Feast leaves Feast's
classes uninstrumented by typeguard (a fresh interpreter each: the decision is made at Feast's import)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = ("import features; from feast import FeatureView; "
         "print('typeguard' in FeatureView.__init__.__code__.co_names)")


def _instrumented(env_value: str | None) -> bool:
    env = {k: v for k, v in os.environ.items() if k != "ECRM_FEAST_TYPECHECKS"}
    if env_value is not None:
        env["ECRM_FEAST_TYPECHECKS"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize("env_value, instrumented", [(None, False), ("0", False), ("1", True)])
def test_feast_is_imported_without_its_typechecks_unless_asked(env_value, instrumented):
    assert _instrumented(env_value) is instrumented


def test_it_does_nothing_once_feast_is_imported():
    code = ("import feast; from configs.runtime import skip_feast_typechecks; import typeguard; "
            "print(skip_feast_typechecks(), getattr(typeguard.typechecked, 'ecrm_noop', False))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    assert out.stdout.split() == ["False", "False"]
