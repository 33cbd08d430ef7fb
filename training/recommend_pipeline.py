"""The ``ecrm train`` stage for the recommender: fit as of a date on orders (+ products, sessions); register.

The fitted :class:`~training.recommend.Recommender` holds its precomputed lists as of ``as_of``; it is
logged to MLflow and registered as ``ecrm-recommender`` (alias ``champion`` for the first version or a
retrain of the champion's configuration). Without product ids in the orders there is no recommender:
the stage says so and everything else works.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd

from configs.runtime import quiet_dependencies
from configs.settings import CandidateSettings, RecommenderSettings, Settings
from features.snapshots import as_utc, data_fingerprint, default_as_of
from features.storage import Workspace
from training.recommend import Recommender
from training.recommend.candidates import CandidateConfig
from training.recommend.data import Encoded
from training.registry import RECOMMENDER_MODEL, configure, find_trained, register_with_alias

Progress = Callable[[str], None]


@dataclass
class RecommenderTrainResult:
    """What a recommender training run produced (``model`` None when skipped)."""

    model: Recommender | None
    info: dict = field(default_factory=dict)
    run_id: str | None = None
    version: int | None = None
    alias: str | None = None
    skipped: bool = False
    message: str = ""


ORDER_COLUMNS = ("order_id", "customer_id", "product_id", "quantity", "unit_price", "ordered_at", "is_return")
SESSION_COLUMNS = ("customer_id", "occurred_at", "event_type", "product_id")
SESSION_EVENTS = ("view", "add_to_cart")  # the events the recommender reads (training.recommend.data.Encoded)
RECOMMENDATION_CHUNK = 50_000  # customers per frame of the batch recommendation outputs


def _read_compact(ws: Workspace, name: str, columns: tuple[str, ...], filters=None) -> pd.DataFrame:
    """``columns`` of a canonical table with the id columns categorical and ``order_id`` as integer codes
    (same order of first appearance as the strings), optionally only the rows matching ``filters``
    (a pyarrow expression). The tables were validated when loaded; this reads them as written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = ws.table_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no '{name}' table in workspace {ws.root}")
    ids = [c for c in ("customer_id", "product_id", "event_type") if c in columns]
    table = pq.read_table(path, columns=list(columns), filters=filters, read_dictionary=ids)
    table = table.replace_schema_metadata(None)  # no pandas metadata: it would turn categories back into strings
    if "order_id" in columns:
        # one dictionary over the combined column: unifying the row groups' dictionaries of order ids took
        # 14 s instead of 4 at 32M order lines (7M orders)
        orders = table.column("order_id")
        if orders.nbytes >= 2 ** 31:  # beyond 32-bit string offsets in one array
            orders = orders.cast(pa.large_string())
        orders = orders.combine_chunks().dictionary_encode()
        codes = orders.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        table = table.drop_columns(["order_id"])
        del orders
    else:
        codes = None
    df = table.to_pandas()
    del table
    pa.default_memory_pool().release_unused()  # the Arrow buffers freed above: 2 GB at 32M order lines
    if codes is not None:
        df.insert(0, "order_id", codes)
    for col in ("quantity", "unit_price"):
        if col in df:
            df[col] = df[col].astype("float64")
    return df


def recommender_inputs(ws: Workspace, compact: bool = False, sessions_since=None, orders: pd.DataFrame | None = None
                       ) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None] | None:
    """(orders, products, sessions) of the workspace, or None when the orders carry no product ids.

    ``compact=True`` (training): only the columns the recommender reads, ids categorical and order ids
    as integer codes (the recommender encodes them to the same codes either way), sessions only the
    view and add-to-cart events at or after ``sessions_since`` (None: all): about 50x less memory than
    the conformed tables of pandas strings (at 20k customers 15 MB instead of 0.7 GB of sessions).
    ``orders``: the orders table already read (as this function would read it).
    """
    if orders is None:
        orders = _read_compact(ws, "orders", ORDER_COLUMNS) if compact else ws.read_table("orders")
    if "product_id" not in orders or orders["product_id"].notna().sum() == 0:
        return None
    products = ws.read_table("products") if ws.has_table("products") else None
    sessions = None
    if ws.has_table("sessions"):
        if compact:
            import pyarrow.compute as pc

            expr = pc.field("event_type").isin(list(SESSION_EVENTS))
            if sessions_since is not None:
                expr = expr & (pc.field("occurred_at") >= as_utc(sessions_since))
            sessions = _read_compact(ws, "sessions", SESSION_COLUMNS, filters=expr)
        else:
            sessions = ws.read_table("sessions")
    return orders, products, sessions


def build_recommender(cfg: RecommenderSettings, predict_jobs: int = 1, fit_jobs: int = 1) -> Recommender:
    """An unfitted recommender configured from the settings; its rankers are fitted with ``fit_jobs``
    threads and its lists scored with ``predict_jobs`` (``compute.threads`` when training alone; neither
    changes the trees or the lists: the rankers' histograms are built per feature, ``force_col_wise``)."""
    return Recommender(lookback_days=cfg.lookback_days, cutoff_step_days=cfg.cutoff_step_days,
                       list_size=cfg.list_size, max_training_customers=cfg.max_training_customers,
                       candidates=candidate_config(cfg.candidates), predict_jobs=predict_jobs, n_jobs=fit_jobs)


def candidate_config(cfg: CandidateSettings) -> CandidateConfig:
    """The recommender's :class:`CandidateConfig` with the configured number of candidates per source
    (its similarity settings stay the defaults)."""
    return CandidateConfig(n_own=cfg.own, n_together=cfg.together, n_similar=cfg.similar, n_ease=cfg.ease,
                           n_popular=cfg.popular, n_trending=cfg.trending, n_season=cfg.season,
                           n_category=cfg.category)


def _config_hash(cfg: RecommenderSettings) -> str:
    keys = ["horizon_days", "training_cutoffs", "cutoff_step_days", "lookback_days", "list_size"]
    # the cap changes no model trained on fewer buyers per cutoff than the default cap: only another value
    # is part of the hash, so versions registered before the cap existed keep theirs
    if cfg.max_training_customers != RecommenderSettings.model_fields["max_training_customers"].default:
        keys.append("max_training_customers")
    payload = {k: getattr(cfg, k) for k in keys}
    if cfg.candidates != CandidateSettings():  # (likewise: only other candidate numbers change the hash)
        payload["candidates"] = cfg.candidates.model_dump()
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def train_recommender(settings: Settings, ws: Workspace, as_of=None, progress: Progress | None = None,
                      force: bool = False, fit_jobs: int | None = None) -> RecommenderTrainResult:
    """Fit, log and register the recommender on events strictly before ``as_of``. Its rankers are fitted
    with ``fit_jobs`` threads (default ``compute.threads``; 1 while another process trains at the same
    time, as in ``ecrm demo``: more threads than free cores were many times slower per tree)."""
    say = progress or (lambda _m: None)
    cfg = settings.recommender
    if not cfg.enabled:
        msg = "recommender disabled in the configuration (recommender.enabled: false)"
        say(msg)
        return RecommenderTrainResult(None, skipped=True, message=msg)
    orders = _read_compact(ws, "orders", ORDER_COLUMNS)
    as_of = as_utc(as_of) if as_of is not None else default_as_of(orders)
    since = build_recommender(cfg).sessions_since(as_of, cfg.horizon_days, cfg.training_cutoffs)
    inputs = recommender_inputs(ws, compact=True, sessions_since=since, orders=orders)
    del orders
    if inputs is None:
        msg = "the orders have no product ids: no recommender (every other model works without them)"
        say(msg)
        return RecommenderTrainResult(None, skipped=True, message=msg)
    orders, products, sessions = inputs
    client = configure(settings, ws)
    tags = {"data_fingerprint": data_fingerprint(ws), "as_of": as_of.isoformat(), "model_config": _config_hash(cfg)}
    if not force and (found := find_trained(client, RECOMMENDER_MODEL, tags)):
        ref, alias = found
        msg = f"{RECOMMENDER_MODEL} v{ref.version} (@{alias}) is already trained on this data and config"
        say(msg)
        return RecommenderTrainResult(None, run_id=ref.run_id, version=ref.version, alias=alias, skipped=True,
                                      message=msg)

    threads = settings.compute.threads
    enc = Encoded(orders, products, sessions, as_of)  # the fit reads only this: the tables are dropped
    del inputs, orders, products, sessions
    model = build_recommender(cfg, threads, threads if fit_jobs is None else fit_jobs).fit(
        enc, as_of=as_of, horizon_days=cfg.horizon_days, training_cutoffs=cfg.training_cutoffs, progress=say)
    del enc
    info = model.fit_info_
    metrics = {f"{lst}_valid_ndcg_at_10": info[lst]["valid_ndcg@10"]
               for lst in ("all", "discovery") if "valid_ndcg@10" in info.get(lst, {})}
    say(f"{info['ranker']}; {info['customers']:,} customers x {info['items']:,} items"
        + "".join(f"; {k.split('_')[0]} validation NDCG@10 {v:.3f}" for k, v in metrics.items()))

    with mlflow.start_run(run_name=f"recommender-train-{as_of.date()}") as run:
        mlflow.set_tags({"ecrm.stage": "train", "ecrm.model": RECOMMENDER_MODEL, **tags})
        mlflow.log_params({"as_of": as_of.date().isoformat(), **cfg.model_dump(),
                           "ease_lambda": info.get("ease_lambda"), "ranker": info["ranker"]})
        mlflow.log_metrics({**metrics, "fit_seconds": info["fit_seconds"],
                            **({"candidate_recall": info["candidate_recall"]} if "candidate_recall" in info else {})})
        mlflow.log_dict(json.loads(json.dumps(info, default=str)), "fit_info.json")
        mlflow.log_dict(settings.model_dump(mode="json"), "config.json")
        with quiet_dependencies():
            logged = mlflow.sklearn.log_model(
                model, name="model", serialization_format="pickle",
                pip_requirements=[f"{d}=={version(d)}" for d in ("lightgbm", "scikit-learn", "pandas", "numpy", "scipy")],
                metadata={"as_of": as_of.isoformat()},
            )
        run_id = run.info.run_id
    ref, alias = register_with_alias(client, RECOMMENDER_MODEL, run_id, logged.model_uri, tags, good=True)
    msg = f"{RECOMMENDER_MODEL} v{ref.version} registered as @{alias}"
    say(msg)
    return RecommenderTrainResult(model, info, run_id, ref.version, alias, message=msg)


def recommendation_tables(model: Recommender, customer_ids, k: int, chunk: int = RECOMMENDATION_CHUNK
                          ) -> dict[str, Iterator[pd.DataFrame]]:
    """The batch outputs: ``recommendations`` (list ``all``) and ``recommendations_discovery``, each with
    columns customer_id, rank 1..k, product_id, score, reason, as frames of ``chunk`` customers (at least
    one, possibly empty) to write one after the other: for 720,000 customers, the whole frames of Python
    strings took the score stage from about 6 to 8.4 GB."""
    ids = list(customer_ids)

    def frames(lst: str) -> Iterator[pd.DataFrame]:
        for lo in range(0, max(len(ids), 1), chunk):
            yield model.recommend_batch(ids[lo:lo + chunk], k, list=lst)

    return {"recommendations": frames("all"), "recommendations_discovery": frames("discovery")}
