"""Backtest of the two-stage recommender against the baselines at one cutoff.

    .venv/bin/python -m benchmarks.recommend_backtest --workspace /tmp/wsl --cutoff 2011-04-01
    .venv/bin/python -m benchmarks.recommend_backtest --workspace /tmp/wsl --cutoff 2011-04-01 \
        --candidates together=20,similar=20,ease=20 --k 50

Every customer with a sale line in the ``--lookback-days`` before the cutoff gets ``k`` items from each
model (the ranker and :func:`training.recommend.baselines.baseline_models`, the baselines of ``ecrm
evaluate``); the truth is the distinct products they buy in ``[cutoff, cutoff + H)`` (``all``) and those
among them they never bought before the cutoff (``discovery``). Prints per-list Recall/NDCG/HitRate/
MAP@k and catalog coverage for every model, paired bootstrap intervals of the NDCG@k difference
between the ranker and the best baseline of that list, fit times and the latency of single
``Recommender.recommend`` calls.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
from pydantic import ValidationError

from configs.settings import CandidateSettings, validation_problems
from training.recommend import Recommender
from training.recommend.baselines import baseline_models
from training.recommend.data import as_utc, interactions
from training.recommend.metrics import (METRICS, catalog_coverage, holdout_truth, paired_bootstrap_diff,
                                        per_customer_metrics)
from training.recommend_pipeline import candidate_config


def eligible_customers(orders: pd.DataFrame, cutoff, lookback_days: int) -> list[str]:
    """Customers with a sale line in ``[cutoff - lookback, cutoff)``."""
    cutoff = as_utc(cutoff)
    lines = interactions(orders, cutoff, start=cutoff - pd.Timedelta(days=lookback_days))
    return sorted(lines["customer_id"].astype(str).unique())


def candidate_settings(text: str) -> CandidateSettings:
    """``source=N,source=N`` as :class:`CandidateSettings` (the sources not named keep their defaults).
    Raises ``ValueError`` naming a malformed item, an unknown source or a bad number."""
    given: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{item!r} is not source=N")
        given[name.strip()] = value.strip()
    try:
        return CandidateSettings(**given)
    except ValidationError as exc:
        raise ValueError(validation_problems(exc)) from None


def latency(model: Recommender, customers: list[str], n: int = 2000, k: int = 10, seed: int = 0) -> dict:
    """p50 / p99 milliseconds of single ``recommend`` calls (known customers, some unknown, some with filters)."""
    rng = np.random.default_rng(seed)
    items = list(model.item_ids_[:50])
    times = []
    for j in range(n):
        c = customers[rng.integers(len(customers))] if j % 10 else f"unknown-{j}"
        kw = {}
        if j % 4 == 1:
            kw = {"list": "discovery"}
        elif j % 4 == 2:
            kw = {"exclude_product_ids": [items[j % len(items)]], "sold_within_days": 90}
        elif j % 4 == 3 and j % 10 == 0:
            kw = {"context_product_ids": [items[j % len(items)]]}
        t0 = time.perf_counter()
        model.recommend(c, k, **kw)
        times.append(time.perf_counter() - t0)
    t = np.array(times) * 1000
    return {"p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99)), "calls": n}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--cutoff", required=True)
    ap.add_argument("--horizon-days", type=int, default=90)
    ap.add_argument("--lookback-days", type=int, default=365)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--no-knn", action="store_true", help="skip the item-kNN baseline")
    ap.add_argument("--no-als", action="store_true", help="skip the implicit ALS baseline")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--candidates", default="",
                    help="the ranker's candidates per source, as recommender.candidates: e.g. together=20,ease=20 "
                         "(the sources not named keep their defaults)")
    args = ap.parse_args(argv)
    try:
        candidates = candidate_settings(args.candidates)
    except ValueError as exc:
        ap.error(f"--candidates: {exc}")

    from features.storage import Workspace

    ws = Workspace(args.workspace)
    orders = ws.read_table("orders")
    products = ws.read_table("products") if ws.has_table("products") else None
    sessions = ws.read_table("sessions") if ws.has_table("sessions") else None
    cutoff, H, k = as_utc(args.cutoff), args.horizon_days, args.k
    customers = eligible_customers(orders, cutoff, args.lookback_days)
    truth = holdout_truth(orders, cutoff, H, customers)
    catalog = int(interactions(orders, cutoff)["product_id"].nunique())
    print(f"cutoff {cutoff.date()}, H={H} d: {len(customers):,} eligible customers, "
          f"{truth['all']['customer_id'].nunique():,} buy in the horizon "
          f"({truth['discovery']['customer_id'].nunique():,} something new); catalog {catalog:,} items sold before")

    models: dict[str, object] = baseline_models(knn=not args.no_knn, als=not args.no_als)
    models["two-stage ranker"] = Recommender(candidates=candidate_config(candidates))
    fit_s: dict[str, float] = {}
    per: dict[str, dict[str, pd.DataFrame]] = {}
    coverage: dict[str, dict[str, float]] = {}
    for name, m in models.items():
        t0 = time.perf_counter()
        m.fit(orders, products, sessions, as_of=cutoff, horizon_days=H,
              progress=lambda msg, name=name: print(f"  [{name}] {msg}", flush=True))
        fit_s[name] = time.perf_counter() - t0
        per[name], coverage[name] = {}, {}
        for lst in ("all", "discovery"):
            recs = m.recommend_batch(customers, k, list=lst)
            if lst == "discovery":
                seen = interactions(orders, cutoff)[["customer_id", "product_id"]].drop_duplicates()
                bad = recs.merge(seen.astype("string"), on=["customer_id", "product_id"])
                assert bad.empty, f"{name}: {len(bad)} bought items in the discovery list"
            per[name][lst] = per_customer_metrics(recs, truth[lst], k).set_index("customer_id")
            coverage[name][lst] = catalog_coverage(recs, catalog, k)
        print(f"  [{name}] fit {fit_s[name]:.1f} s", flush=True)

    out: dict = {"cutoff": str(cutoff.date()), "horizon_days": H, "customers": len(customers), "fit_seconds": fit_s,
                 "lists": {}}
    baselines = [n for n in models if n != "two-stage ranker"]
    for lst in ("all", "discovery"):
        print(f"\n== list '{lst}' ({len(per['popularity'][lst]):,} customers with a relevant item), @{k} ==")
        print(f"{'model':<18}" + "".join(f"{m + '@' + str(k):>12}" for m in METRICS) + f"{'coverage':>10}")
        rows = {}
        for name in models:
            p = per[name][lst]
            rows[name] = {m: float(p[m].mean()) for m in METRICS} | {"coverage": coverage[name][lst]}
            print(f"{name:<18}" + "".join(f"{rows[name][m]:>12.4f}" for m in METRICS)
                  + f"{coverage[name][lst]:>10.3f}")
        best = max(baselines, key=lambda n: rows[n]["ndcg"])
        boots = {}
        for m in METRICS:
            boots[m] = paired_bootstrap_diff(per["two-stage ranker"][lst][m], per[best][lst][m], n_boot=args.n_boot)
        b = boots["ndcg"]
        print(f"ranker - {best} (best baseline): NDCG@{k} {b['diff']:+.4f} "
              f"[{b['ci_low']:+.4f}, {b['ci_high']:+.4f}] 95% paired bootstrap, "
              f"{'excludes' if b['excludes_zero'] else 'includes'} zero")
        for m in METRICS[1:]:
            b = boots[m]
            print(f"    {m}@{k} {b['diff']:+.4f} [{b['ci_low']:+.4f}, {b['ci_high']:+.4f}]")
        each = {n: paired_bootstrap_diff(per["two-stage ranker"][lst]["ndcg"], per[n][lst]["ndcg"], n_boot=args.n_boot)
                for n in baselines}
        print(f"ranker - each baseline, NDCG@{k}: " + ", ".join(
            f"{n} {b['diff']:+.4f} [{b['ci_low']:+.4f}, {b['ci_high']:+.4f}]" for n, b in each.items()))
        out["lists"][lst] = {"metrics": rows, "best_baseline": best, "bootstrap_vs_best": boots,
                             "ndcg_vs_each_baseline": each}

    lat = latency(models["two-stage ranker"], customers, k=k)
    out["latency"] = lat
    out["fit_info"] = models["two-stage ranker"].fit_info_
    print(f"\nfit seconds: " + ", ".join(f"{n} {s:.1f}" for n, s in fit_s.items()))
    print(f"recommend() latency over {lat['calls']} calls, k={k}: p50 {lat['p50_ms']:.3f} ms, "
          f"p99 {lat['p99_ms']:.3f} ms")
    info = models["two-stage ranker"].fit_info_
    print("ranker fit info:", json.dumps({kk: v for kk, v in info.items() if kk not in ("all", "discovery")},
                                         default=str))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=str)
    return out


if __name__ == "__main__":
    main()
