"""``ecrm compare`` and ``ecrm promote``: registered versions side by side, and the promotion gate.

The gate is a fair fight: the champion's and the challenger's *configurations* (recorded with each
run) are both trained and scored on the same rolling backtest cutoffs, on the same customers. The
challenger takes the ``champion`` alias only if it is better on the configured metric and the paired
bootstrap 95% interval of the difference excludes zero. Every decision, taken or refused, is an
MLflow run saying why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from configs.settings import Settings
from evaluation.bootstrap import paired_bootstrap
from evaluation.rolling import backtest_cutoffs, rolling_backtest
from features.storage import Workspace
from training.metrics import churn_metrics, count_metrics, fast_roc_auc
from training.registry import (
    CHALLENGER,
    CHAMPION,
    CHURN_MODEL,
    NEXT_PURCHASE_MODEL,
    ModelRef,
    configure,
    get_alias,
    list_versions,
    set_alias,
)

Progress = Callable[[str], None]

# model -> (rolling-backtest model key, actual column, prediction column)
GATED = {
    CHURN_MODEL: ("churn", "churned", "churn_model"),
    NEXT_PURCHASE_MODEL: ("next_purchase", "orders", "orders_model"),
}
# metric -> (function of (actual, prediction), lower is better)
METRICS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], float], bool]] = {
    "brier": (lambda y, p: float(np.mean((np.asarray(p, float) - np.asarray(y, float)) ** 2)), True),
    "roc_auc": (fast_roc_auc, False),
    "pr_auc": (lambda y, p: churn_metrics(y, p)["pr_auc"], False),
    "poisson_deviance": (lambda y, mu: count_metrics(y, mu)["poisson_deviance"], True),
    "rmse": (lambda y, mu: count_metrics(y, mu)["rmse"], True),
}


def compare_table(settings: Settings, ws: Workspace, name: str) -> pd.DataFrame:
    """Registered versions of ``name`` with alias, training date, validation metrics and model config."""
    client = configure(settings, ws)
    rows = []
    for ref in list_versions(client, name):
        run = client.get_run(ref.run_id)
        val = {k.removeprefix("val_model_").removeprefix("val_"): v for k, v in run.data.metrics.items()
               if k.startswith("val_") and not k.startswith(("val_recency", "val_bgnbd", "val_run_rate"))}
        rows.append({"version": ref.version, "aliases": ",".join(ref.aliases) or "-", "as_of": ref.tags.get("as_of", "")[:10],
                     "model_config": ref.tags.get("model_config", ""), "run_id": ref.run_id[:8],
                     **{k: round(v, 4) for k, v in sorted(val.items())}})
    return pd.DataFrame(rows)


def recent_evaluations(settings: Settings, ws: Workspace, n: int = 5) -> pd.DataFrame:
    """The last ``n`` ``ecrm evaluate`` runs with their pooled model-minus-baseline differences."""
    client = configure(settings, ws)
    exp = client.get_experiment_by_name(settings.mlflow.experiment)
    if exp is None:
        return pd.DataFrame()
    runs = client.search_runs([exp.experiment_id], "tags.`ecrm.stage` = 'evaluate'", order_by=["attributes.start_time DESC"],
                              max_results=n)
    rows = [{"run_id": r.info.run_id[:8], "cutoffs": r.data.params.get("cutoffs", ""),
             **{k: round(v, 4) for k, v in r.data.metrics.items() if k.endswith("_diff")}} for r in runs]
    return pd.DataFrame(rows)


@dataclass
class PromotionDecision:
    """What the gate decided and why."""

    model: str
    promoted: bool
    reason: str
    champion: int | None
    challenger: int | None
    metric: str
    champion_value: float = float("nan")
    challenger_value: float = float("nan")
    diff: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    run_id: str | None = None


def _config_of(client: MlflowClient, ref: ModelRef) -> Settings:
    """The settings the version was trained with (its run's config.json)."""
    path = mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path="config.json",
                                               tracking_uri=client.tracking_uri)
    with open(path) as fh:
        return Settings.model_validate(json.load(fh))


def promotion_gate(y: np.ndarray, champion: np.ndarray, challenger: np.ndarray, metric: str, n_samples: int,
                   strata: np.ndarray | None = None) -> dict:
    """Compare two models' predictions of the same customers; ``promote`` only on a clear win."""
    if metric not in METRICS:
        raise ValueError(f"unknown promotion metric '{metric}': choose from {sorted(METRICS)}")
    fn, lower = METRICS[metric]
    res = paired_bootstrap(y, challenger, champion, fn, n_samples=n_samples, strata=strata)
    better = res["diff"] < 0 if lower else res["diff"] > 0
    res.update(champion_value=fn(y, champion), challenger_value=fn(y, challenger), promote=bool(better and res["excludes_zero"]),
               better=bool(better))
    return res


def promote(settings: Settings, ws: Workspace, name: str, progress: Progress | None = None,
            cutoffs: list | None = None) -> PromotionDecision:
    """Run the gate for ``name``'s challenger against its champion; move ``champion`` if it wins."""
    say = progress or (lambda _m: None)
    if name not in GATED:
        raise ValueError(f"unknown model '{name}': choose from {', '.join(GATED)}")
    client = configure(settings, ws)
    champ, chall = get_alias(client, name, CHAMPION), get_alias(client, name, CHALLENGER)
    metric = settings.evaluation.promotion_metric.get(name, "brier" if name == CHURN_MODEL else "poisson_deviance")
    if chall is None or champ is None:
        missing = "challenger" if chall is None else "champion"
        return PromotionDecision(name, False, f"no {missing} version of {name}: nothing to compare", champ and champ.version,
                                 chall and chall.version, metric)
    key, actual, column = GATED[name]
    H = int(chall.tags.get("horizon_days", settings.churn.horizon_days))
    orders = ws.read_table("orders")
    cuts = [pd.Timestamp(c) for c in cutoffs] if cutoffs else backtest_cutoffs(settings, orders["ordered_at"].max(), H)
    preds = {}
    for label, ref in (("champion", champ), ("challenger", chall)):
        say(f"backtesting the {label}'s configuration (v{ref.version}) at {len(cuts)} cutoffs")
        cfg = _config_of(client, ref).model_copy(update={"workspace": settings.workspace, "mlflow": settings.mlflow})
        res = rolling_backtest(cfg, ws, cuts, H, progress=say, models=(key,))
        preds[label] = res.predictions[["cutoff", "customer_id", actual, column]]
    both = preds["champion"].merge(preds["challenger"], on=["cutoff", "customer_id", actual], suffixes=("_champion", "_challenger"))
    gate = promotion_gate(both[actual].to_numpy(), both[f"{column}_champion"].to_numpy(),
                          both[f"{column}_challenger"].to_numpy(), metric, settings.evaluation.bootstrap_samples,
                          strata=both["cutoff"].to_numpy())
    direction = "lower" if METRICS[metric][1] else "higher"
    verdict = (f"challenger v{chall.version} {metric} {gate['challenger_value']:.4f} vs champion v{champ.version} "
               f"{gate['champion_value']:.4f} ({direction} is better); difference {gate['diff']:+.4f}, "
               f"95% interval [{gate['ci_low']:+.4f}, {gate['ci_high']:+.4f}] on {len(both)} customer-cutoffs")
    if gate["promote"]:
        reason = f"promoted: {verdict}"
    elif gate["better"]:
        reason = f"refused: better but the interval includes zero; {verdict}"
    else:
        reason = f"refused: not better; {verdict}"
    with mlflow.start_run(run_name=f"promote-{name}-v{chall.version}") as run:
        mlflow.set_tags({"ecrm.stage": "promotion", "ecrm.model": name, "decision": "promoted" if gate["promote"] else "refused",
                         "reason": reason[:4900]})
        mlflow.log_params({"champion_version": champ.version, "challenger_version": chall.version, "metric": metric,
                           "cutoffs": ",".join(str(c.date()) for c in cuts)})
        mlflow.log_metrics({k: float(gate[k]) for k in ("champion_value", "challenger_value", "diff", "ci_low", "ci_high")})
        run_id = run.info.run_id
    if gate["promote"]:
        set_alias(client, chall, CHAMPION)
        client.delete_registered_model_alias(name, CHALLENGER)
        client.set_model_version_tag(name, str(chall.version), "promotion", reason[:4900])
    say(reason)
    return PromotionDecision(name, gate["promote"], reason, champ.version, chall.version, metric,
                             gate["champion_value"], gate["challenger_value"], gate["diff"], gate["ci_low"],
                             gate["ci_high"], run_id)
