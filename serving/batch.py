"""``ecrm score``: the batch at-risk list, with the same scoring function as the HTTP service.

Scores every customer with an order in the eligibility window before ``as_of`` using the registered
``champion`` (nothing is trained), writes ``churn.parquet`` and ``at_risk.csv``, and loads the same
feature snapshot into the online store so the HTTP service answers with identical features.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from configs.settings import Settings
from features.pipeline import CUSTOMER_VIEWS, prepare_features
from features.schema import repeated_timestamp
from features.snapshots import as_utc, default_as_of
from features.storage import (Workspace, write_bytes_atomic, write_json_atomic, write_parquet_atomic,
                              write_parquet_frames_atomic)
from features.store import historical_features, materialize_as_of, online_is_current
from serving.at_risk import at_risk_csv, at_risk_path, at_risk_table
from serving.crm_warnings import evaluate_warnings, quarterly_kpis
from serving.scoring import ChurnScorer, NextPurchaseScorer
from training.labels import ORDER_LINE_COLUMNS, customer_orders, eligible_customers
from training.registry import (CHAMPION, CHURN_MODEL, NEXT_PURCHASE_MODEL, RECOMMENDER_MODEL, SEGMENT_MODEL, configure,
                               get_alias, load_model)


@dataclass
class ScoreResult:
    """Where the batch outputs went and a summary."""

    out_dir: Path
    as_of: pd.Timestamp
    n_scored: int
    model_version: int
    band_counts: dict[str, int]
    outputs: list[str]
    warnings: list[dict] = field(default_factory=list)


def load_scorer(settings: Settings, ws: Workspace, alias: str = CHAMPION) -> tuple[ChurnScorer, dict]:
    """The churn scorer of the registered ``alias`` version and its registry info."""
    client = configure(settings, ws)
    model, ref = load_model(client, CHURN_MODEL, alias)
    refs = json.loads(ref.tags["feature_refs"])
    scorer = ChurnScorer(model, refs, settings.churn.risk_bands, settings.churn.top_drivers)
    return scorer, {"name": ref.name, "version": ref.version, "alias": alias, "run_id": ref.run_id,
                    "trained_as_of": ref.tags.get("as_of")}


def load_next_purchase_scorer(settings: Settings, ws: Workspace, alias: str = CHAMPION
                              ) -> tuple[NextPurchaseScorer, dict] | None:
    """The next-purchase scorer of the registered ``alias`` version, or None when there is none."""
    client = configure(settings, ws)
    if get_alias(client, NEXT_PURCHASE_MODEL, alias) is None:
        return None
    model, ref = load_model(client, NEXT_PURCHASE_MODEL, alias)
    return NextPurchaseScorer(model, json.loads(ref.tags["feature_refs"])), {
        "name": ref.name, "version": ref.version, "alias": alias, "run_id": ref.run_id, "trained_as_of": ref.tags.get("as_of")}


def load_segment_model(settings: Settings, ws: Workspace, alias: str = CHAMPION) -> tuple[object, list[str], dict] | None:
    """The registered segment model, its feature refs and registry info, or None when there is none."""
    client = configure(settings, ws)
    if get_alias(client, SEGMENT_MODEL, alias) is None:
        return None
    model, ref = load_model(client, SEGMENT_MODEL, alias)
    return model, json.loads(ref.tags["feature_refs"]), {
        "name": ref.name, "version": ref.version, "alias": alias, "run_id": ref.run_id, "trained_as_of": ref.tags.get("as_of")}


def _refreshed_lists_path(ws: Workspace) -> Path:
    return ws.state_dir / "recommender_lists.pkl"


def load_recommender(settings: Settings, ws: Workspace, alias: str = CHAMPION) -> tuple[object, dict] | None:
    """The registered recommender of ``alias`` and its registry info, or None when there is none.

    When ``ecrm score`` recomputed this version's lists as of another date (``score --as-of``), those
    lists are served, so that HTTP and batch answer alike."""
    client = configure(settings, ws)
    ref = get_alias(client, RECOMMENDER_MODEL, alias)
    if ref is None:
        return None
    info = {"name": ref.name, "version": ref.version, "alias": alias, "run_id": ref.run_id,
            "trained_as_of": ref.tags.get("as_of")}
    path = _refreshed_lists_path(ws)
    if path.is_file():
        saved = pickle.loads(path.read_bytes())
        if saved.get("name") == ref.name and saved.get("version") == ref.version:
            return saved["model"], info
    model, _ = load_model(client, RECOMMENDER_MODEL, alias)
    return model, info


SEGMENT_COLUMNS = ["customer_id", "recency_score", "frequency_score", "monetary_score", "rfm_segment",
                   "lifecycle_stage", "value_tier", "abc_class", "cluster"]


def churn_table(scored: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """The ``churn.parquet`` table (one row per customer) from :meth:`ChurnScorer.score_table`'s rows
    and the features they were scored from (in the same order)."""
    df = scored.reset_index(drop=True)
    df["monetary_365d"] = features["customer_orders__monetary_365d"].to_numpy()
    df["recency_days"] = features["customer_orders__recency_days"].to_numpy()
    df["frequency_365d"] = features["customer_orders__frequency_365d"].to_numpy()
    df["value_at_risk"] = (df["churn_probability"] * df["monetary_365d"].clip(lower=0)).round(2)
    return df[[c for c in df.columns if c != "top_drivers_text"] + ["top_drivers_text"]]


def score_batch(settings: Settings, ws: Workspace, out_dir: Path, as_of=None,
                progress: Callable[[str], None] | None = None, reuse_online: bool = False) -> ScoreResult:
    """Score the eligible customers as of ``as_of`` and write the batch outputs into ``out_dir``.

    ``reuse_online``: skip loading the online store when its record says it already holds these very
    snapshot files at ``as_of`` (``ecrm demo`` loads it in a second process while the models train)."""
    say = progress or (lambda _m: None)
    orders = ws.read_arrow("orders", ORDER_LINE_COLUMNS)  # what the labels and the warnings' KPIs read
    as_of = as_utc(as_of) if as_of is not None else default_as_of(orders)
    scorer, info = load_scorer(settings, ws)
    say(f"scoring with {info['name']} v{info['version']} (@{info['alias']}) as of {as_of.date()}")
    store, views = prepare_features(settings, ws, [as_of], progress=say, views=CUSTOMER_VIEWS)
    missing = {r.split(":")[0] for r in scorer.refs} - set(views)
    if missing:
        raise ValueError(f"the model needs feature views {sorted(missing)} that this workspace's data cannot provide")
    order_rows = customer_orders(orders)
    eligible = eligible_customers(order_rows, as_of, settings.churn.eligibility_days)
    kpis = quarterly_kpis(orders, as_of, order_rows)  # what the warnings read (a few rows)
    del order_rows, orders  # (32M lines and 7M orders at 1M customers: ~2.5 GB not held while scoring)
    if len(eligible) == 0:
        raise ValueError(f"no customer has an order in the {settings.churn.eligibility_days} days before {as_of.date()}")
    ent = pd.DataFrame({"customer_id": eligible.astype("string"),
                        "event_timestamp": repeated_timestamp(as_of, len(eligible))})
    feats = historical_features(store, ent, scorer.refs)
    say(f"scoring {len(ent)} customers")
    ids = ent["customer_id"].tolist()
    # the drivers of every customer
    scored = scorer.score_table(ids, feats[scorer.columns].to_numpy(dtype="float64"),
                                threads=settings.compute.threads, progress=say)
    table = churn_table(scored, feats)
    del scored
    table.insert(1, "as_of", as_of.isoformat())
    models = {"churn": info}
    frames: dict[str, pd.DataFrame] = {}
    chunked: dict[str, Iterator[pd.DataFrame]] = {}  # outputs written a frame at a time

    np_scorer = load_next_purchase_scorer(settings, ws)
    if np_scorer is not None:
        np_model, np_info = np_scorer
        say(f"next purchase and value with {np_info['name']} v{np_info['version']} (@champion)")
        np_feats = feats if set(np_model.refs) <= set(scorer.refs) else historical_features(store, ent, np_model.refs)
        rows = np_model.score_frame(ids, np_feats, as_of, (1.0 - table["churn_probability"]).tolist())
        frames["next_purchase"] = pd.DataFrame(rows).drop(columns=["status"])
        models["next_purchase"] = np_info
        clv = frames["next_purchase"]["clv_12m"].to_numpy()
        table["clv_12m"] = clv
        table["value_at_risk"] = (table["churn_probability"] * table["clv_12m"].clip(lower=0)).round(2)
    else:
        say(f"no {NEXT_PURCHASE_MODEL} champion: value at risk uses the last 365 days' spend")
    seg_model = load_segment_model(settings, ws)
    if seg_model is not None:
        model, seg_refs, seg_info = seg_model
        say(f"segments with {seg_info['name']} v{seg_info['version']} (@champion)")
        seg_feats = feats if set(seg_refs) <= set(scorer.refs) else historical_features(store, ent, seg_refs)
        X = seg_feats[[r.replace(":", "__") for r in seg_refs]]
        value = table["clv_12m"].to_numpy() if "clv_12m" in table else None
        seg = model.transform(X, value)
        seg.insert(0, "customer_id", ids)
        frames["segments"] = seg[SEGMENT_COLUMNS]
        models["segments"] = seg_info
        for col in ("rfm_segment", "lifecycle_stage", "value_tier"):
            table[col] = seg[col].to_numpy()
    rec = load_recommender(settings, ws)
    if rec is not None:
        from training.recommend_pipeline import recommendation_tables, recommender_inputs

        model, rec_info = rec
        if model.as_of_ != as_of:  # the ranker stays; the lists are recomputed from the data before as_of
            say(f"recommendation lists as of {as_of.date()} (model trained as of {pd.Timestamp(rec_info['trained_as_of']).date()})")
            model.refresh(*recommender_inputs(ws), as_of=as_of)
            # what the service serves for this version from now on (see load_recommender)
            write_bytes_atomic(pickle.dumps({"name": rec_info["name"], "version": rec_info["version"],
                                             "model": model}), _refreshed_lists_path(ws))
        say(f"recommendations with {rec_info['name']} v{rec_info['version']} (@champion)")
        chunked = recommendation_tables(model, ids, settings.recommender.batch_k)
        models["recommender"] = rec_info
    table = table.sort_values(["churn_probability", "value_at_risk"], ascending=False).reset_index(drop=True)

    out_dir = Path(out_dir)
    outputs = ["churn.parquet", "at_risk.csv"]
    write_parquet_atomic(table, out_dir / "churn.parquet")
    optional = [c for c in ("clv_12m", "rfm_segment", "lifecycle_stage", "value_tier") if c in table]
    cols = ["customer_id", "churn_probability", "risk_band", "value_at_risk", *optional,
            "monetary_365d", "recency_days", "frequency_365d", "top_drivers_text"]
    at_risk = table[cols].rename(columns={"top_drivers_text": "top_drivers"})
    write_bytes_atomic(at_risk_csv(at_risk), out_dir / "at_risk.csv")
    for name, frame in frames.items():
        write_parquet_atomic(frame, out_dir / f"{name}.parquet")
        outputs.append(f"{name}.parquet")
    for name, parts in chunked.items():
        write_parquet_frames_atomic(parts, out_dir / f"{name}.parquet")
        outputs.append(f"{name}.parquet")
    warnings = evaluate_warnings(table, None, as_of, settings.warnings, kpis=kpis)
    record = {"as_of": as_of.isoformat(), "warnings": warnings}
    write_json_atomic(record, out_dir / "warnings.json")
    outputs.append("warnings.json")
    bands = table["risk_band"].value_counts().to_dict()
    write_json_atomic({"as_of": as_of.isoformat(), "model": info, "models": models, "customers": len(table),
                       "risk_bands": bands, "outputs": outputs}, out_dir / "score_manifest.json")
    online_views = [v for v in views if v.startswith("customer_")]
    if reuse_online and online_is_current(ws, as_of, online_views):
        say("the online store already holds the same feature snapshot")
    else:
        say("loading the same feature snapshot into the online store")
        materialize_as_of(store, ws, as_of, online_views, progress=say, workers=settings.compute.threads)
    write_json_atomic(record, warnings_path(ws))  # what GET /warnings answers
    customers = ws.read_table("customers") if ws.has_table("customers") else None
    write_parquet_atomic(at_risk_table(table, customers), at_risk_path(ws))  # what POST /at_risk answers
    return ScoreResult(out_dir, as_of, len(table), info["version"], bands, outputs, warnings)


def warnings_path(ws: Workspace) -> Path:
    """The warnings of the scoring run the online store holds (read by ``GET /warnings``)."""
    return ws.state_dir / "warnings.json"
