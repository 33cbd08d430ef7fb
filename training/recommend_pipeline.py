"""The ``ecrm train`` stage for the recommender: fit as of a date on orders (+ products, sessions); register.

The fitted :class:`~training.recommend.Recommender` holds its precomputed lists as of ``as_of``; it is
logged to MLflow and registered as ``ecrm-recommender`` (alias ``champion`` for the first version or a
retrain of the champion's configuration). Without product ids in the orders there is no recommender:
the stage says so and everything else works.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version

import mlflow
import mlflow.sklearn
import pandas as pd

from configs.runtime import quiet_dependencies
from configs.settings import RecommenderSettings, Settings
from features.snapshots import as_utc, data_fingerprint, default_as_of
from features.storage import Workspace
from training.recommend import Recommender
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


def recommender_inputs(ws: Workspace) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None] | None:
    """(orders, products, sessions) of the workspace, or None when the orders carry no product ids."""
    orders = ws.read_table("orders")
    if "product_id" not in orders or orders["product_id"].notna().sum() == 0:
        return None
    products = ws.read_table("products") if ws.has_table("products") else None
    sessions = ws.read_table("sessions") if ws.has_table("sessions") else None
    return orders, products, sessions


def build_recommender(cfg: RecommenderSettings) -> Recommender:
    """An unfitted recommender configured from the settings."""
    return Recommender(lookback_days=cfg.lookback_days, cutoff_step_days=cfg.cutoff_step_days,
                       list_size=cfg.list_size)


def _config_hash(cfg: RecommenderSettings) -> str:
    keys = ("horizon_days", "training_cutoffs", "cutoff_step_days", "lookback_days", "list_size")
    return hashlib.sha256(json.dumps({k: getattr(cfg, k) for k in keys}, sort_keys=True).encode()).hexdigest()[:16]


def train_recommender(settings: Settings, ws: Workspace, as_of=None, progress: Progress | None = None,
                      force: bool = False) -> RecommenderTrainResult:
    """Fit, log and register the recommender on events strictly before ``as_of``."""
    say = progress or (lambda _m: None)
    cfg = settings.recommender
    if not cfg.enabled:
        msg = "recommender disabled in the configuration (recommender.enabled: false)"
        say(msg)
        return RecommenderTrainResult(None, skipped=True, message=msg)
    inputs = recommender_inputs(ws)
    if inputs is None:
        msg = "the orders have no product ids: no recommender (every other model works without them)"
        say(msg)
        return RecommenderTrainResult(None, skipped=True, message=msg)
    orders, products, sessions = inputs
    as_of = as_utc(as_of) if as_of is not None else default_as_of(orders)
    client = configure(settings, ws)
    tags = {"data_fingerprint": data_fingerprint(ws), "as_of": as_of.isoformat(), "model_config": _config_hash(cfg)}
    if not force and (found := find_trained(client, RECOMMENDER_MODEL, tags)):
        ref, alias = found
        msg = f"{RECOMMENDER_MODEL} v{ref.version} (@{alias}) is already trained on this data and config"
        say(msg)
        return RecommenderTrainResult(None, run_id=ref.run_id, version=ref.version, alias=alias, skipped=True,
                                      message=msg)

    model = build_recommender(cfg).fit(orders, products, sessions, as_of=as_of, horizon_days=cfg.horizon_days,
                                       training_cutoffs=cfg.training_cutoffs, progress=say)
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


def recommendation_tables(model: Recommender, customer_ids, k: int) -> dict[str, pd.DataFrame]:
    """The batch outputs: ``recommendations`` (list ``all``) and ``recommendations_discovery``, each with
    columns customer_id, rank 1..k, product_id, score, reason."""
    return {"recommendations": model.recommend_batch(customer_ids, k, list="all"),
            "recommendations_discovery": model.recommend_batch(customer_ids, k, list="discovery")}
