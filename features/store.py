"""The Feast feature store of a workspace: configuration, apply, offline retrieval, materialization.

The stores are chosen in configuration (``feast.online_store`` / ``feast.offline_store``), so the same
code runs with SQLite or Redis online and DuckDB or Spark offline (historical retrieval reads the
parquet snapshots through either engine; the online load reads the score date's rows of the same files
in chunks, whatever the engine).
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
import pandas as pd
from feast import FeatureStore
from feast.repo_config import RepoConfig

from configs.runtime import quiet_dependencies
from configs.settings import ConfigError, Settings
from features.errors import OnlineStoreUnavailable
from features.repo.definitions import (ONLINE_VALUES, VIEW_SPECS, build_definitions, online_view,
                                      online_view_features, snapshot_path)
from features.schema import TIMESTAMP_DTYPE
from features.snapshots import as_utc, available_views
from features.storage import Workspace, file_stamp, write_json_atomic


def _online_config(settings: Settings, ws: Workspace) -> dict:
    """Feast ``online_store`` section: SQLite in the workspace or a Redis server."""
    online = settings.feast.online_store
    if online.type == "sqlite":
        return {"type": "sqlite", "path": str(ws.feast_dir / "online_store.db")}
    return {"type": "redis", "connection_string": online.connection_string}


def _offline_config(settings: Settings) -> dict:
    """Feast ``offline_store`` section: DuckDB, or Spark with the configured session settings."""
    offline = settings.feast.offline_store
    if offline.type == "duckdb":
        return {"type": "duckdb"}
    try:
        import pyspark  # noqa: F401  (an optional extra: say how to get it rather than fail deep in Feast)
    except ImportError as exc:
        raise ConfigError("feast.offline_store.type is 'spark' but pyspark is not installed: run "
                          "`make install-spark`, i.e. `uv sync --frozen --extra spark` (or `pip install 'feast[spark]==0.67.0'`)") from exc
    return {"type": "spark", "spark_conf": dict(offline.spark_conf)}


def repo_config(settings: Settings, ws: Workspace) -> RepoConfig:
    """Feast RepoConfig for this workspace from the settings (stores chosen by configuration only)."""
    return RepoConfig(
        project=settings.feast.project,
        provider="local",
        registry=str(ws.feast_dir / "registry.db"),
        online_store=_online_config(settings, ws),
        offline_store=_offline_config(settings),
        repo_path=ws.feast_dir,
        entity_key_serialization_version=3,
    )


def open_store(settings: Settings, ws: Workspace) -> FeatureStore:
    """Open (without applying anything) the workspace's feature store."""
    ws.feast_dir.mkdir(parents=True, exist_ok=True)
    return FeatureStore(config=repo_config(settings, ws))


def apply_definitions(store: FeatureStore, ws: Workspace) -> list[str]:
    """Register entities, views and services for the views whose snapshots exist; return the views."""
    views = [v for v in available_views(ws) if (ws.features_dir / f"{v}.parquet").is_file()]
    store.apply(build_definitions(ws.features_dir, views, offline_store=store.config.offline_store.type))
    return views


def feature_refs(views: Sequence[str]) -> list[str]:
    """Every ``view:feature`` reference of the given views."""
    return [f"{v}:{f}" for v in views for f in VIEW_SPECS[v][1]]


def historical_features(store: FeatureStore, entity_df: pd.DataFrame, refs: Sequence[str]) -> pd.DataFrame:
    """Point-in-time correct features for ``entity_df`` (an id column and ``event_timestamp``).

    Returns the rows in ``entity_df`` order with columns named ``view__feature``; missing values NaN.
    """
    key = "product_id" if "product_id" in entity_df.columns else "customer_id"
    ent = entity_df[[key, "event_timestamp"]].copy()
    ent[key] = ent[key].astype("string")
    ent["event_timestamp"] = pd.to_datetime(ent["event_timestamp"], utc=True).astype(TIMESTAMP_DTYPE)
    ent = ent.drop_duplicates().reset_index(drop=True)
    with quiet_dependencies():
        got = store.get_historical_features(entity_df=ent, features=list(refs), full_feature_names=True).to_df()
    got[key] = got[key].astype("string")
    got["event_timestamp"] = pd.to_datetime(got["event_timestamp"], utc=True).astype(TIMESTAMP_DTYPE)
    cols = [r.replace(":", "__") for r in refs]
    left = entity_df[[key, "event_timestamp"]].copy()
    left[key] = left[key].astype("string")
    left["event_timestamp"] = pd.to_datetime(left["event_timestamp"], utc=True).astype(TIMESTAMP_DTYPE)
    out = left.merge(got[[key, "event_timestamp", *cols]], on=[key, "event_timestamp"], how="left")
    for c in cols:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    return out


def snapshot_fingerprint(ws: Workspace, views: Sequence[str]) -> str:
    """Size and modification time of the views' snapshot files: changes whenever a snapshot is rewritten."""
    return ";".join(f"{v}:{file_stamp(ws.features_dir / f'{v}.parquet') or '-'}" for v in sorted(views))


def online_layout(views: Sequence[str]) -> str:
    """How the online store holds these views: a vector per entity and view, with the features in this
    order. A store loaded with another layout (an older version, other features) is reloaded."""
    return "vector-per-view " + ";".join(f"{v}:{','.join(online_view_features(v))}" for v in sorted(views))


def online_is_current(ws: Workspace, as_of: pd.Timestamp, views: Sequence[str]) -> bool:
    """Whether the record says the online store holds exactly these views' current snapshots at ``as_of``."""
    info = online_snapshot_info(ws)
    return (info is not None and info.get("as_of") == as_utc(as_of).isoformat()
            and sorted(info.get("views", [])) == sorted(views)
            and info.get("snapshots") == snapshot_fingerprint(ws, views)
            and info.get("layout") == online_layout(views))


def _online_vectors(batch, key: str, features: Sequence[str]) -> pd.DataFrame:
    """A batch of snapshot rows as the online twin's rows: the key, the snapshot time and ``values``,
    the features in order as one float vector per entity (NaN where a feature has no value)."""
    matrix = np.column_stack([batch.column(f).to_numpy(zero_copy_only=False).astype("float64") for f in features])
    return pd.DataFrame({key: batch.column(key).to_pandas(), "event_timestamp": batch.column("event_timestamp").to_pandas(),
                         ONLINE_VALUES: list(matrix)})


ONLINE_LOAD_ROWS = 20_000  # customers written to the online store per call: bounds the load's memory
PROGRESS_EVERY_S = 5.0  # the online load reports its progress at most this often (and when a view is done)
# fewer rows to load than this: no worker processes (starting them costs seconds: the 100k bench's load of
# 200,000 rows took 15.8 s with two workers, 11.5 s without; 2M rows: 99 -> 66 s)
PARALLEL_LOAD_ROWS = 500_000


_WORKER_STORE: list[FeatureStore] = []  # in an online-load worker process only: its store (_open_worker_store)


def _open_worker_store(config: RepoConfig) -> None:
    """Initializer of an online-load worker process: open the store once for the batches it writes."""
    _WORKER_STORE.append(FeatureStore(config=config))


def _write_online(store: FeatureStore, view: str, rows: pd.DataFrame) -> int:
    """Write ``rows`` to ``view``'s online twin, without Feast's chatter; returns their number."""
    with quiet_dependencies(), contextlib.redirect_stdout(io.StringIO()):
        store.write_to_online_store(online_view(view), rows)
    return len(rows)


def _worker_write(view: str, rows: pd.DataFrame) -> int:
    """In an online-load worker process: :func:`_write_online` with the worker's store."""
    return _write_online(_WORKER_STORE[0], view, rows)


def materialize_as_of(store: FeatureStore, ws: Workspace, as_of: pd.Timestamp, views: Sequence[str],
                      progress: Callable[[str], None] | None = None, chunk_rows: int = ONLINE_LOAD_ROWS,
                      workers: int = 1) -> None:
    """Load the snapshots taken at ``as_of`` into the online store, ``chunk_rows`` entities at a time, and
    record their freshness.

    Each view's rows at ``as_of`` are read from its snapshot file in batches (pyarrow, filtered on the
    snapshot time) and written with Feast's ``write_to_online_store`` to the view's online twin (one
    vector of the view's features per entity), in whichever online store is configured. Memory stays
    bounded: ``FeatureStore.materialize`` pulls a view's whole time range through the offline store and
    turns every value into a protobuf at once (4.7 GB at 200,000 customers, growing with the shop), and a
    row per entity instead of one per feature makes the load about as many times faster.

    ``workers`` > 1 (and at least :data:`PARALLEL_LOAD_ROWS` rows): the batches are written by that many
    worker processes, at most two batches each in flight, while this one reads the next (Feast turns
    every row into protobufs in Python, which one process does on one core; the scale bench's online load of
    1M customers into SQLite with 2 workers: 99 -> 66 s). The writers of a SQLite store take turns on its
    lock, one batch's transaction at a time. The loaded rows are the same whatever ``workers``.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    as_of = as_utc(as_of)
    fingerprint = snapshot_fingerprint(ws, views)  # taken before reading: a rewrite meanwhile makes it stale
    when = ds.field("event_timestamp") == pa.scalar(as_of.to_pydatetime(), type=pa.timestamp("us", tz="UTC"))
    sources, totals = {}, {}
    for view in views:  # every file checked before anything is written
        path = snapshot_path(ws.features_dir, view)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no snapshots of feature view '{view}' (build the features first)")
        sources[view] = ds.dataset(path, format="parquet")
        totals[view] = sources[view].count_rows(filter=when)
        if totals[view] == 0:
            raise ValueError(f"{path}: no '{view}' snapshot at {as_of.isoformat()} to load into the online store")
    workers = max(1, int(workers)) if sum(totals.values()) >= PARALLEL_LOAD_ROWS else 1
    pool = None
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_open_worker_store, initargs=(store.config,))
    try:
        for view in views:
            done, said = 0, time.monotonic()
            total = totals[view]
            key = VIEW_SPECS[view][0].join_key
            features = online_view_features(view)
            pending: collections.deque = collections.deque()

            def report(n: int) -> None:
                nonlocal done, said
                done += n
                if progress and (done == total or time.monotonic() - said >= PROGRESS_EVERY_S):
                    progress(f"online store: {view} {done:,}/{total:,} rows as of {as_of.date()}")
                    said = time.monotonic()

            for batch in sources[view].to_batches(filter=when, batch_size=chunk_rows,
                                                  columns=[key, "event_timestamp", *features]):
                if batch.num_rows == 0:
                    continue
                vectors = _online_vectors(batch, key, features)
                if pool is None:
                    report(_write_online(store, view, vectors))
                    continue
                pending.append(pool.submit(_worker_write, view, vectors))
                del vectors
                while len(pending) >= 2 * workers:
                    report(pending.popleft().result())
            while pending:
                report(pending.popleft().result())
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    write_json_atomic(
        {"as_of": as_of.isoformat(), "views": list(views), "materialized_at": pd.Timestamp.now(tz="UTC").isoformat(),
         "snapshots": fingerprint, "layout": online_layout(views)},
        ws.feast_dir / "online_snapshot.json",
    )


def online_snapshot_info(ws: Workspace) -> dict | None:
    """What the online store holds: snapshot time, views and when it was materialized."""
    path = ws.feast_dir / "online_snapshot.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _stored(ts: datetime | None) -> bool:
    """Whether an online row was ever written: Redis answers an entity it never stored with empty values
    and the epoch as timestamp (SQLite with no row); snapshot times are never the epoch."""
    return ts is not None and ts.timestamp() > 0


def _vector_position(ref: str) -> tuple[str, int]:
    """``(view, position)`` of a ``view:feature`` reference in its view's online twin's vector."""
    view, _, feature = ref.partition(":")
    order = online_view_features(view) if view in VIEW_SPECS else []
    if feature not in order:
        raise ValueError(f"feature reference {ref!r}: no feature {feature!r} in a view {view!r}")
    return view, order.index(feature)


class OnlineReader:
    """Reads a fixed list of features for customer ids from the configured online store, as floats.

    The service's hot path: each view's online twin (one vector of the view's features per customer,
    :func:`features.repo.definitions.online_view`) is read straight from the online store through Feast's
    provider (SQLite, Redis, ... by configuration), without the per-call request planning of
    ``get_online_features`` (measured ~1 ms of a one-customer request); one row per customer and view.
    """

    def __init__(self, store: FeatureStore, refs: Sequence[str]) -> None:
        from feast.infra.provider import get_provider

        self.refs = list(refs)
        self.columns = [r.replace(":", "__") for r in self.refs]
        self._config = store.config
        self._provider = get_provider(store.config)
        self._views = []  # (online twin, positions in its vector, positions in :attr:`columns`)
        by_view: dict[str, list[tuple[int, int]]] = {}
        for pos, ref in enumerate(self.refs):
            view, at = _vector_position(ref)
            by_view.setdefault(view, []).append((at, pos))
        for view, items in by_view.items():
            self._views.append((store.get_feature_view(online_view(view)), np.array([i for i, _ in items]),
                                np.array([p for _, p in items])))

    def read(self, customer_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(values, known)``: one row per id in :attr:`columns` order (NaN where missing) and whether
        the id is in the online store at all (unknown ids have no row in any view)."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        keys = [EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=str(c))]) for c in customer_ids]
        values = np.full((len(keys), len(self.refs)), np.nan)
        known = np.zeros(len(keys), dtype=bool)
        for view, in_vector, columns in self._views:
            try:
                rows = self._provider.online_read(config=self._config, table=view, entity_keys=keys,
                                                  requested_features=[ONLINE_VALUES])
            except Exception as exc:  # any backend error: the caller answers 503 and retries next time
                from feast.infra.provider import get_provider

                self._provider = get_provider(self._config)  # a fresh connection for the next request
                store = self._config.online_store.type
                raise OnlineStoreUnavailable(f"the {store} online store is unavailable: "
                                             f"{type(exc).__name__}: {exc}") from exc
            for i, (ts, feats) in enumerate(rows):
                vector = feats.get(ONLINE_VALUES) if feats and _stored(ts) else None
                if vector is None or not vector.HasField("double_list_val"):
                    continue
                known[i] = True
                values[i, columns] = np.asarray(vector.double_list_val.val, dtype="float64")[in_vector]
        return values, known


def online_features(store: FeatureStore, customer_ids: Sequence[str], refs: Sequence[str]) -> dict[str, list]:
    """Online feature values for ``customer_ids`` through Feast's ``get_online_features`` on the views'
    online twins, as a dict of column lists (``customer_id`` and ``view__feature``; None where missing).

    The service reads with :class:`OnlineReader`; this is the same data through Feast's public API."""
    views = list(dict.fromkeys(r.split(":", 1)[0] for r in refs))
    resp = store.get_online_features(
        features=[f"{online_view(v)}:{ONLINE_VALUES}" for v in views],
        entity_rows=[{"customer_id": str(c)} for c in customer_ids], full_feature_names=True,
    ).to_dict()
    out: dict[str, list] = {"customer_id": [str(c) for c in resp["customer_id"]]}
    for ref in refs:
        view, at = _vector_position(ref)
        vectors = resp[f"{online_view(view)}__{ONLINE_VALUES}"]
        out[ref.replace(":", "__")] = [None if v is None or np.isnan(v[at]) else float(v[at]) for v in vectors]
    return out
