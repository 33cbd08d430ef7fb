"""Prometheus metrics of ecrm beside BentoML's request counts, latencies and errors (``GET /metrics``).

* ``ecrm_model_version{model}``: the registered version serving, per model;
* ``ecrm_features_as_of_seconds`` and ``ecrm_features_materialized_seconds``: Unix time of the online
  feature snapshot and of its load (feature age = ``time() - ecrm_features_as_of_seconds``);
* ``ecrm_refused_champion``: 1 while a newly promoted champion is refused (see :mod:`serving.reload`).

Created in the worker process (BentoML sets up Prometheus' multi-process mode before it starts).
"""

from __future__ import annotations

import pandas as pd


class ServiceMetrics:
    """The gauges, and how to set them from a service state."""

    def __init__(self) -> None:
        from prometheus_client import Gauge

        self.version = Gauge("ecrm_model_version", "Registered version of the model serving", ["model"],
                             multiprocess_mode="livemax")
        self.features_as_of = Gauge("ecrm_features_as_of_seconds", "Unix time of the online feature snapshot",
                                    multiprocess_mode="livemax")
        self.materialized = Gauge("ecrm_features_materialized_seconds",
                                  "Unix time the online feature snapshot was loaded", multiprocess_mode="livemax")
        self.refused = Gauge("ecrm_refused_champion", "1 while a newly promoted champion is refused",
                             multiprocess_mode="livemax")

    def update(self, state, refused: dict | None) -> None:
        """Set every gauge from ``state`` (a ServiceState) and the reloader's refusal."""
        for model, version in state.versions().items():
            self.version.labels(model=model).set(version)
        snap = state.snapshot()
        for gauge, key in ((self.features_as_of, "as_of"), (self.materialized, "materialized_at")):
            if snap.get(key):
                gauge.set(pd.Timestamp(snap[key]).timestamp())
        self.refused.set(1 if refused else 0)
