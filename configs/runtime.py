"""How ecrm runs its dependencies: deprecation chatter from inside Feast/ibis/MLflow quieted (a context
manager around the calls that emit it, so no process-wide filter is changed), MLflow's log level, and
Feast imported without its development-time type checks.
"""

from __future__ import annotations

import logging
import os
import sys
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


FEAST_TYPECHECKS_ENV = "ECRM_FEAST_TYPECHECKS"


def skip_feast_typechecks() -> bool:
    """Make typeguard's ``@typechecked`` a no-op for the Feast modules imported from now on; True if done.

    Feast decorates its classes with it, which re-parses and recompiles their source when Feast is
    imported: about 5.5 s of every process that imports Feast (7.5 s instead of 2 s on the development
    machine: each CLI command, server worker, stage of the scale bench and test subprocess), for checks of
    Feast's own API use. ``python -O`` turns the decorator off the same way, but would also strip every
    library's asserts. ``features/__init__.py`` calls this before any Feast import; nothing else uses
    typeguard's decorator. ``ECRM_FEAST_TYPECHECKS=1`` keeps the checks. No effect once Feast is imported.
    """
    if os.environ.get(FEAST_TYPECHECKS_ENV) == "1" or "feast" in sys.modules:
        return False
    import typeguard

    if not getattr(typeguard.typechecked, "ecrm_noop", False):
        def typechecked(target=None, **_options):
            """typeguard's decorator as ``python -O`` makes it: the target unchanged."""
            return target if target is not None else (lambda t: t)

        typechecked.ecrm_noop = True
        typeguard.typechecked = typechecked
    return True
