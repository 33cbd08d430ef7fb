"""Quieting dependencies: deprecation chatter from inside Feast/ibis/MLflow tells a user nothing.

Used as a context manager around the calls that emit it, so no process-wide filter is changed.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# Deprecations raised inside dependencies by calls we do not control (and cannot fix from here).
_DEPENDENCY_NOISE = (
    r".*fetch_arrow_table\(\) is deprecated.*",  # ibis's DuckDB backend, used by Feast's offline store
    r".*The ``noload`` loader strategy is deprecated.*",  # SQLAlchemy, inside MLflow's tracking store
    r".*pkg_resources is deprecated.*",
)


# Loggers that warn about choices made deliberately: the model is stored as a pickle (it is our own
# code, loaded only from our own registry) and uv-made environments have no pip to pin.
_DELIBERATE = ("mlflow.sklearn", "mlflow.utils.environment", "mlflow.models.model")


@contextmanager
def quiet_dependencies() -> Iterator[None]:
    """Silence known deprecation warnings and deliberate-choice warnings inside dependencies, for the block."""
    loggers = [logging.getLogger(name) for name in _DELIBERATE]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        for pattern in _DEPENDENCY_NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def default_library_logging() -> None:
    """MLflow logs its database migrations at INFO; keep it at WARNING unless the user chose a level."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
