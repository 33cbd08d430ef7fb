"""Train, validate, log and register the churn model for a workspace.

Training examples are eligible customers at monthly cutoffs (stacked, so last year's season is in the
data), with features from Feast's point-in-time retrieval and labels from :mod:`training.labels`.
Validation is strictly later than training: the last cutoff (as_of - H) is held out and the model used
for validation sees only cutoffs whose label window closed before it. The registered model is then
refitted on all cutoffs with the validated number of trees.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from importlib.metadata import version
from dataclasses import dataclass, field

import mlflow
import mlflow.sklearn
import numpy as np
import matplotlib.pyplot as plt
import pandas as pd

from configs.runtime import quiet_dependencies
from configs.settings import Settings
from features.pipeline import CUSTOMER_VIEWS, customer_views, prepare_features
from features.schema import repeated_timestamp
from features.snapshots import data_fingerprint
from features.storage import Workspace
from features.store import feature_refs, historical_features
from training import plots
from training.bgnbd import BetaGeoModel
from training.churn_model import ChurnModel
from training.customer_base import POPULATION_COLUMNS
from training.customer_inputs import CustomerInputs, customer_inputs
from training.labels import churn_labels, eligible_customers, training_cutoffs, utc_datetime64
from training.metrics import churn_metrics
from training.registry import CHURN_MODEL, configure, find_trained, register_with_alias
from training.sampling import sample_customers

Progress = Callable[[str], None]


@dataclass
class ChurnDataset:
    """Stacked training examples: features, labels and the cutoff of each row."""

    X: pd.DataFrame
    y: np.ndarray
    cutoff: np.ndarray
    customer_id: np.ndarray
    population: pd.DataFrame  # BG/NBD inputs of every customer with history, per cutoff
    population_cutoff: np.ndarray

    def subset(self, mask: np.ndarray) -> "ChurnDataset":
        """The rows (and populations) of the cutoffs selected by ``mask``."""
        keep = np.isin(self.population_cutoff, np.unique(self.cutoff[mask]))
        return ChurnDataset(self.X.loc[mask].reset_index(drop=True), self.y[mask], self.cutoff[mask],
                            self.customer_id[mask], self.population.loc[keep].reset_index(drop=True),
                            self.population_cutoff[keep])

    def fit_kwargs(self) -> dict:
        """Keyword arguments of ChurnModel.fit for this data set."""
        return {"groups": self.cutoff, "population": self.population, "population_groups": self.population_cutoff}


@dataclass
class ChurnTrainResult:
    """What a training run produced."""

    model: ChurnModel | None
    metrics: dict[str, float] = field(default_factory=dict)
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    run_id: str | None = None
    version: int | None = None
    alias: str | None = None
    skipped: bool = False
    message: str = ""
    data: ChurnDataset | None = None  # the training set, reusable by the next-purchase model


def build_dataset(store, order_rows: pd.DataFrame, cutoffs: list[pd.Timestamp], refs: list[str],
                  horizon_days: int, lookback_days: int) -> ChurnDataset:
    """Labels at each cutoff joined to point-in-time features from the feature store."""
    labels = pd.concat([churn_labels(order_rows, c, horizon_days, lookback_days) for c in cutoffs], ignore_index=True)
    feats = historical_features(store, labels[["customer_id", "event_timestamp"]], refs)
    cols = [r.replace(":", "__") for r in refs]
    pop = population_features(store, order_rows, cutoffs)
    return ChurnDataset(
        X=feats[cols].reset_index(drop=True),
        y=labels["churned"].to_numpy(),
        cutoff=utc_datetime64(labels["event_timestamp"]),
        customer_id=labels["customer_id"].to_numpy(),
        population=pop[list(POPULATION_COLUMNS)],
        population_cutoff=utc_datetime64(pop["event_timestamp"]),
    )


def training_orders(settings: Settings, order_rows: pd.DataFrame, say: Progress) -> pd.DataFrame:
    """The order rows the training sets are built from: every customer's, or those of a stable sample of
    ``churn.max_training_customers`` customers on a larger shop (:mod:`training.sampling`)."""
    sample = sample_customers(order_rows, settings.churn.max_training_customers)
    if len(sample) < len(order_rows):
        say(f"training sets from a sample of {sample['customer_id'].nunique():,} of "
            f"{order_rows['customer_id'].nunique():,} customers (churn.max_training_customers)")
    return sample


def training_features(settings: Settings, ws: Workspace, order_rows: pd.DataFrame, cutoffs: list[pd.Timestamp],
                      as_of: pd.Timestamp, say: Progress) -> tuple[object, list[str], pd.DataFrame]:
    """The Feast store, its views and the training rows (:func:`training_orders`) of the customer models,
    with the snapshots they read: as of ``as_of`` for every customer (scoring, level anchoring), at the
    training ``cutoffs`` only for the training customers (all of them unless the shop is sampled)."""
    rows = training_orders(settings, order_rows, say)
    sample = None if len(rows) == len(order_rows) else pd.unique(rows["customer_id"].astype(str))
    store, views = prepare_features(settings, ws, [as_of], progress=say, views=CUSTOMER_VIEWS,
                                    sample_cutoffs=cutoffs, sample=sample)
    return store, views, rows


def stacked_cutoffs(settings: Settings, order_rows: pd.DataFrame, as_of: pd.Timestamp, horizon_days: int
                    ) -> list[pd.Timestamp]:
    """The monthly training cutoffs of the customer models before ``as_of`` (labels ending by it).

    Raises ``ValueError`` when the history holds fewer than 2 (from the first order + one step on).
    """
    first = order_rows["ordered_at"].min()
    step = settings.churn.cutoff_step_days
    cutoffs = training_cutoffs(as_of, horizon_days, settings.churn.training_cutoffs, step,
                               earliest=first + pd.Timedelta(days=step))
    if len(cutoffs) < 2:
        raise ValueError(f"orders from {first.date()} to {as_of.date()} are too short for training with a "
                         f"{horizon_days}-day horizon: need at least 2 cutoffs between the first order + {step} days "
                         f"and {as_of.date()} - {horizon_days} days")
    return cutoffs


def score_date_features(store, order_rows: pd.DataFrame, as_of: pd.Timestamp, refs: list[str],
                        lookback_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """At a score date: the features of the eligible customers (who models score, and on whom their level
    is anchored) and the customer base (every customer with history, for BG/NBD and Gamma-Gamma)."""
    eligible = eligible_customers(order_rows, as_of, lookback_days)
    ent = pd.DataFrame({"customer_id": eligible.astype("string"),
                        "event_timestamp": repeated_timestamp(as_of, len(eligible))})
    X = historical_features(store, ent, refs)[[r.replace(":", "__") for r in refs]].reset_index(drop=True)
    population = population_features(store, order_rows, [as_of])[list(POPULATION_COLUMNS)]
    return X, population


def population_features(store, order_rows: pd.DataFrame, cutoffs: list[pd.Timestamp]) -> pd.DataFrame:
    """BG/NBD and Gamma-Gamma inputs of every customer with an order before each cutoff (the customer base then)."""
    first = order_rows.groupby("customer_id", observed=True)["ordered_at"].min()
    ent = pd.concat(
        [pd.DataFrame({"customer_id": first.index[first < c].astype("string"),
                       "event_timestamp": repeated_timestamp(c, int((first < c).sum()))})
         for c in cutoffs],
        ignore_index=True,
    )
    feats = historical_features(store, ent, [r.replace("__", ":") for r in POPULATION_COLUMNS])
    feats.columns = [c for c in feats.columns]
    return feats


def make_model(settings: Settings, horizon_days: int, **overrides) -> ChurnModel:
    """A ChurnModel with the configured hyper-parameters."""
    lgb = settings.churn.lightgbm.model_dump()
    lgb.update(overrides)
    return ChurnModel(horizon_days=horizon_days, init_from_bgnbd=settings.churn.init_from_bgnbd,
                      n_jobs=settings.compute.threads, **lgb)


def baseline_scores(val: ChurnDataset, horizon_days: int) -> dict[str, np.ndarray]:
    """Honest baselines on the validation rows: recency rank and BG/NBD P(no purchase in H)."""
    recency = val.X["customer_orders__recency_days"].to_numpy()
    bg = BetaGeoModel().fit(*ChurnModel._rft(val.population))
    x, t_x, T = ChurnModel._rft(val.X)
    return {"recency": recency, "bgnbd": bg.p_no_purchase(float(horizon_days), x, t_x, T)}


def fit_churn(settings: Settings, data: ChurnDataset, horizon_days: int, progress: Progress | None = None
              ) -> tuple[ChurnModel, dict[str, float], dict[str, dict[str, float]], dict[str, np.ndarray], ChurnDataset]:
    """Validate on the last cutoff, then refit on every cutoff. Returns model, metrics, baselines, scores, val."""
    cuts = np.array(sorted(pd.unique(data.cutoff)))
    val_cut = cuts[-1]
    train_mask = data.cutoff <= val_cut - np.timedelta64(horizon_days, "D")
    if train_mask.sum() == 0 or len(np.unique(data.y[train_mask])) < 2:
        raise ValueError(
            f"not enough history to validate: need training cutoffs at least {horizon_days} days before the "
            f"validation cutoff {pd.Timestamp(val_cut).date()}; load a longer history or lower churn.horizon_days"
        )
    train, val = data.subset(train_mask), data.subset(data.cutoff == val_cut)
    if progress:
        progress(f"validating on cutoff {pd.Timestamp(val_cut).date()} ({len(val.y)} customers), "
                 f"training on {len(np.unique(train.cutoff))} earlier cutoffs ({len(train.y)} rows)")
    probe = make_model(settings, horizon_days).fit(train.X, train.y, eval_set=(val.X, val.y),
                                                   eval_population=val.population, **train.fit_kwargs())
    probe.fit_population(val.population, val.X)
    p_val = probe.predict_proba(val.X)[:, 1]
    metrics = churn_metrics(val.y, p_val)
    base = baseline_scores(val, horizon_days)
    baselines = {name: churn_metrics(val.y, s if name != "recency" else s / (s.max() + 1)) for name, s in base.items()}
    baselines["recency"]["brier"] = float("nan")  # a rank, not a probability
    if progress:
        progress(f"validation ROC-AUC {metrics['roc_auc']:.3f} (recency {baselines['recency']['roc_auc']:.3f}, "
                 f"BG/NBD {baselines['bgnbd']['roc_auc']:.3f}); refitting on all {len(cuts)} cutoffs")
    n_trees = max(20, int(round(probe.best_iteration_ * 1.1)))
    final = make_model(settings, horizon_days, n_estimators=n_trees).fit(data.X, data.y, **data.fit_kwargs())
    scores = {"model": p_val, "bgnbd": base["bgnbd"], "recency": base["recency"]}
    metrics["best_iteration"] = float(probe.best_iteration_)
    return final, metrics, baselines, scores, val


def config_hash(settings: Settings, as_of: pd.Timestamp, horizon_days: int) -> str:
    """Hash of everything that changes the trained model."""
    payload = json.dumps({"churn": settings.churn.model_dump(mode="json"), "as_of": str(as_of), "h": horizon_days}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def train_churn(settings: Settings, ws: Workspace, as_of=None, horizon_days: int | None = None,
                progress: Progress | None = None, force: bool = False,
                inputs: CustomerInputs | None = None) -> ChurnTrainResult:
    """The ``ecrm train`` stage for churn: features, labels, fit, validate, log, register. ``inputs``: the
    order rows and score-date features shared with the other customer models (read here when None)."""
    say = progress or (lambda _m: None)
    H = int(horizon_days or settings.churn.horizon_days)
    inputs = customer_inputs(ws, as_of, inputs)
    order_rows, as_of = inputs.order_rows, inputs.as_of
    cutoffs = stacked_cutoffs(settings, order_rows, as_of, H)
    first = order_rows["ordered_at"].min()
    client = configure(settings, ws)
    tags = {"data_fingerprint": data_fingerprint(ws), "config_hash": config_hash(settings, as_of, H),
            "model_config": config_hash(settings, None, H), "as_of": as_of.isoformat(), "horizon_days": H}
    if not force:
        if found := find_trained(client, CHURN_MODEL, tags):
            ref, alias = found
            msg = f"{CHURN_MODEL} v{ref.version} (@{alias}) is already trained on this data and config"
            say(msg)
            return ChurnTrainResult(None, run_id=ref.run_id, version=ref.version, alias=alias, skipped=True, message=msg)

    say(f"features at {len(cutoffs)} training cutoffs {cutoffs[0].date()}..{cutoffs[-1].date()} and as of {as_of.date()}")
    store, views, training_rows = training_features(settings, ws, order_rows, cutoffs, as_of, say)
    refs = feature_refs(customer_views(views))
    data = build_dataset(store, training_rows, cutoffs, refs, H, settings.churn.eligibility_days)
    say(f"training set: {len(data.y)} rows, churn rate {data.y.mean():.2f}")
    model, metrics, baselines, scores, val = fit_churn(settings, data, H, progress=say)

    X_now, population_now = inputs.score_date_features(store, refs, settings.churn.eligibility_days)
    model.fit_population(population_now, X_now)

    with mlflow.start_run(run_name=f"churn-train-{as_of.date()}") as run:
        mlflow.set_tags({"ecrm.stage": "train", "ecrm.model": CHURN_MODEL, **tags})
        mlflow.log_params({
            "as_of": as_of.date().isoformat(), "horizon_days": H, "eligibility_days": settings.churn.eligibility_days,
            "cutoffs": len(cutoffs), "first_cutoff": cutoffs[0].date().isoformat(),
            "validation_cutoff": cutoffs[-1].date().isoformat(), "rows": len(data.y),
            "training_customers": int(pd.unique(data.customer_id).size),
            "features": len(refs), "feature_views": ",".join(customer_views(views)),
            "data_start": first.date().isoformat(), **{f"lgbm_{k}": v for k, v in model.get_params().items()},
        })
        mlflow.log_metrics({f"val_{k}": v for k, v in metrics.items() if np.isfinite(v)})
        for name, m in baselines.items():
            mlflow.log_metrics({f"val_{name}_{k}": v for k, v in m.items() if np.isfinite(v)})
        mlflow.log_dict(settings.model_dump(mode="json"), "config.json")
        mlflow.log_figure(plots.roc_figure(val.y, scores), "plots/roc.png")
        mlflow.log_figure(plots.calibration_figure(val.y, {"model": scores["model"], "bgnbd": scores["bgnbd"]}), "plots/calibration.png")
        mlflow.log_figure(plots.gains_figure(val.y, scores), "plots/gains.png")
        imp = model.feature_importance()
        mlflow.log_figure(plots.importance_figure(imp), "plots/feature_importance.png")
        mlflow.log_text(imp.to_csv(header=["gain"]), "feature_importance.csv")
        plt.close("all")
        with quiet_dependencies():
            info = mlflow.sklearn.log_model(
                model, name="model", serialization_format="pickle",
                pip_requirements=[f"{d}=={version(d)}" for d in ("lightgbm", "scikit-learn", "pandas", "scipy")],
                metadata={"feature_refs": refs, "horizon_days": H, "as_of": as_of.isoformat()},
            )
        run_id = run.info.run_id
    good = metrics["roc_auc"] > baselines["recency"]["roc_auc"]
    ref, alias = register_with_alias(
        client, CHURN_MODEL, run_id, info.model_uri,
        {**tags, "val_roc_auc": round(metrics["roc_auc"], 4), "val_brier": round(metrics["brier"], 4),
         "feature_refs": json.dumps(refs)}, good)
    msg = (f"{CHURN_MODEL} v{ref.version} registered" + (f" as @{alias}" if alias else
           " without alias: it did not beat the recency baseline on validation"))
    say(msg)
    return ChurnTrainResult(model, metrics, baselines, run_id, ref.version, alias, message=msg, data=data)
