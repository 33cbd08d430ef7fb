"""Feature stage: snapshots at the needed cutoffs, registered in the workspace's Feast store."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd
from feast import FeatureStore

from configs.settings import Settings
from features.repo.definitions import CUSTOMER, VIEW_SPECS
from features.snapshots import update_snapshots
from features.storage import Workspace
from features.store import apply_definitions, open_store


def prepare_features(
    settings: Settings, ws: Workspace, cutoffs: Iterable[pd.Timestamp], progress: Callable[[str], None] | None = None,
    views: Iterable[str] | None = None, *, sample_cutoffs: Iterable[pd.Timestamp] = (),
    sample: Iterable[str] | None = None,
) -> tuple[FeatureStore, list[str]]:
    """Compute missing snapshots for ``cutoffs`` (of ``views``, default all) on the configured offline
    store's engine (DuckDB, or Spark SQL) and apply the Feast definitions; return the store and the views
    it has.

    ``sample_cutoffs`` are needed only for the customers in ``sample`` (the training cutoffs of a shop
    whose training sets are sampled): their snapshots hold only those customers, which on a large shop is
    most of the feature work saved. With ``sample`` None they are computed for every customer."""
    offline = settings.feast.offline_store
    sample_cutoffs = list(sample_cutoffs)
    if sample is None:
        cutoffs, sample_cutoffs = [*cutoffs, *sample_cutoffs], []
    update_snapshots(ws, cutoffs, progress=progress, only=views, offline_store=offline)
    if sample_cutoffs:
        update_snapshots(ws, sample_cutoffs, progress=progress, only=views, offline_store=offline, customers=sample)
    store = open_store(settings, ws)
    views = apply_definitions(store, ws)
    return store, views


CUSTOMER_VIEWS = tuple(name for name, spec in VIEW_SPECS.items() if spec[0] is CUSTOMER)


def customer_views(views: Iterable[str]) -> list[str]:
    """The customer feature views among ``views`` (the churn model's inputs)."""
    return [v for v in views if v.startswith("customer_")]
