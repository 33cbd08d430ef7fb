"""The ``ecrm train`` stage for segments: fit RFM edges, value tiers and clusters as of a date; register.

The segment model is fitted on the customers eligible at ``as_of`` with their predicted 12-month value
from the next-purchase champion (or, without one, the last 365 days' spend as the value proxy). It is
logged and registered as ``ecrm-segments`` so that batch scoring and the HTTP service give a customer
the same segment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd

from configs.runtime import quiet_dependencies
from configs.settings import Settings
from features.pipeline import CUSTOMER_VIEWS, customer_views, prepare_features
from features.snapshots import data_fingerprint
from features.storage import Workspace
from features.store import feature_refs
from training.customer_inputs import CustomerInputs, customer_inputs
from training.next_purchase_pipeline import config_hash as next_purchase_config_hash
from training.registry import NEXT_PURCHASE_MODEL, SEGMENT_MODEL, CHAMPION, configure, find_trained, get_alias, load_model, register_with_alias
from training.segments import SegmentModel

Progress = Callable[[str], None]


@dataclass
class SegmentTrainResult:
    """What a segment training run produced."""

    model: SegmentModel | None
    sizes: dict[str, dict[str, int]]
    run_id: str | None = None
    version: int | None = None
    alias: str | None = None
    skipped: bool = False
    message: str = ""


def predicted_value(settings: Settings, ws: Workspace, population: pd.DataFrame,
                    X: pd.DataFrame, as_of: pd.Timestamp) -> tuple[np.ndarray | None, str]:
    """12-month value of ``X``'s customers from the next-purchase champion, or (None, why not).

    ``population`` is the customer base at the score date (see ``score_date_features``). A champion
    trained as of that date on the same data with the same settings was anchored on this very customer
    base when it was trained (``train_next_purchase``): it is used as it is; otherwise it is first
    refitted on it."""
    client = configure(settings, ws)
    if get_alias(client, NEXT_PURCHASE_MODEL, CHAMPION) is None:
        return None, f"no {NEXT_PURCHASE_MODEL} champion: value tiers use the last 365 days' spend"
    model, ref = load_model(client, NEXT_PURCHASE_MODEL, CHAMPION)
    cols = [r.replace(":", "__") for r in json.loads(ref.tags["feature_refs"])]
    missing = [c for c in cols if c not in X.columns]
    if missing:
        return None, f"{NEXT_PURCHASE_MODEL} v{ref.version} needs features {missing[:3]}: value tiers use spend"
    # trained as of this date on this data with these settings (the eligible customers among them)
    horizon = int(ref.tags.get("horizon_days", settings.churn.horizon_days))
    anchored = (ref.tags.get("as_of") == as_of.isoformat()
                and ref.tags.get("config_hash") == next_purchase_config_hash(settings, as_of, horizon)
                and ref.tags.get("data_fingerprint") == data_fingerprint(ws))
    if not anchored:
        model.fit_population(population, X[cols])
    return model.predict_frame(X[cols])["clv_12m"].to_numpy(), f"value = clv_12m of {NEXT_PURCHASE_MODEL} v{ref.version}"


def train_segments(settings: Settings, ws: Workspace, as_of=None, progress: Progress | None = None,
                   force: bool = False, inputs: CustomerInputs | None = None) -> SegmentTrainResult:
    """Fit, log and register the segment model as of ``as_of``. ``inputs``: the order rows and score-date
    features shared with the other customer models (read here when None)."""
    say = progress or (lambda _m: None)
    inputs = customer_inputs(ws, as_of, inputs)
    as_of = inputs.as_of
    client = configure(settings, ws)
    np_ref = get_alias(client, NEXT_PURCHASE_MODEL, CHAMPION)
    cfg = hashlib.sha256(json.dumps({"eligibility": settings.churn.eligibility_days}, sort_keys=True).encode()).hexdigest()[:16]
    tags = {"data_fingerprint": data_fingerprint(ws), "as_of": as_of.isoformat(), "model_config": cfg,
            "value_model": f"{NEXT_PURCHASE_MODEL}:{np_ref.version}" if np_ref else "monetary_365d"}
    if not force and (found := find_trained(client, SEGMENT_MODEL, tags)):
        ref, alias = found
        msg = f"{SEGMENT_MODEL} v{ref.version} (@{alias}) is already fitted on this data and value model"
        say(msg)
        return SegmentTrainResult(None, {}, ref.run_id, ref.version, alias, skipped=True, message=msg)

    store, views = prepare_features(settings, ws, [as_of], progress=say, views=CUSTOMER_VIEWS)
    refs = feature_refs(customer_views(views))
    X, population = inputs.score_date_features(store, refs, settings.churn.eligibility_days)
    if len(X) < 10:
        raise ValueError(f"only {len(X)} customers have an order in the {settings.churn.eligibility_days} days "
                         f"before {as_of.date()}: too few to fit segments")
    value, note = predicted_value(settings, ws, population, X, as_of)
    say(note)
    model = SegmentModel().fit(X, value)
    seg = model.transform(X, value)
    sizes = {col: seg[col].astype(str).value_counts().to_dict() for col in ("rfm_segment", "lifecycle_stage", "value_tier", "cluster")}
    say(f"{len(X)} customers; lifecycle {sizes['lifecycle_stage']}")

    with mlflow.start_run(run_name=f"segments-train-{as_of.date()}") as run:
        mlflow.set_tags({"ecrm.stage": "train", "ecrm.model": SEGMENT_MODEL, **tags})
        mlflow.log_params({"as_of": as_of.date().isoformat(), "customers": len(X), "value": note[:250]})
        mlflow.log_dict(settings.model_dump(mode="json"), "config.json")
        mlflow.log_dict(sizes, "segment_sizes.json")
        mlflow.log_text(model.describe_clusters().to_csv(index=False), "clusters.csv")
        with quiet_dependencies():
            info = mlflow.sklearn.log_model(
                model, name="model", serialization_format="pickle",
                pip_requirements=[f"{d}=={version(d)}" for d in ("scikit-learn", "pandas", "numpy")],
                metadata={"feature_refs": refs, "as_of": as_of.isoformat()},
            )
        run_id = run.info.run_id
    ref, alias = register_with_alias(client, SEGMENT_MODEL, run_id, info.model_uri,
                                     {**tags, "feature_refs": json.dumps(refs)}, good=True)
    msg = f"{SEGMENT_MODEL} v{ref.version} registered as @{alias}"
    say(msg)
    return SegmentTrainResult(model, sizes, run_id, ref.version, alias, message=msg)
