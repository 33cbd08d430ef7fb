"""The two-stage recommender: candidates from several sources, re-ranked by LightGBM lambdarank.

``Recommender().fit(orders, products, sessions, as_of=t)`` uses only events strictly before ``t``:

1. EASE's ``lambda`` is chosen on the cutoff ``t - H`` (labels end at ``t``) from a small grid, by the
   NDCG@10 of the never-bought list (:func:`~training.recommend.baselines.choose_ease_lambda`; over at
   most 100,000 customers, a seeded sample above that).
2. Training data: at ``training_cutoffs`` cutoffs ``t - H - j * step`` (j = 1..n) and the validation
   cutoff ``t - H``, candidates and features (:mod:`training.recommend.candidates`) for the customers
   with an order in the ``lookback_days`` before the cutoff who bought something in the next H days;
   label = the candidate was bought in ``[cutoff, cutoff + H)``. Above ``max_training_customers`` such
   customers at a cutoff (default None here; 10,000 in the settings: the demo shop has 3.8k-4.5k), a
   seeded random sample of that many is used, so the rankers' memory and time stop growing with the shop.
   Candidates are built in chunks of ``build_chunk`` customers and only the rows the rankers keep
   (queries with a positive; negatives sampled as in 3.) accumulate, never every cutoff's candidates.
3. Two lambdarank models: ``all`` over every candidate and ``discovery`` over the candidates the
   customer never bought, trained on every positive and at most ``max_negatives`` (``all``, 20) or
   ``discovery_max_negatives`` (50) random negatives per (cutoff, customer) query; early stopping on
   the (unsampled) validation cutoff, then, only with ``refit=True``, refitted on all cutoffs with the
   chosen number of trees. The ``all`` queries hold several positives (repurchases) among ~70
   candidates: 20 negatives and 63 histogram bins (``max_bin``) gave the same NDCG@10 as 50 and 255
   at two cutoffs of Online Retail II with half the rows and fewer, cheaper trees (fit about 3x
   faster); a learning rate of 0.15-0.2 (fewer trees), alone or with 10 negatives, lost NDCG.
   The ``discovery`` queries hold about one positive each (a new item bought) and kept 50 negatives
   and 255 bins (``discovery_max_bin``): with 20 negatives their NDCG dropped. The ``discovery`` model also has
   smaller, better-populated trees (``discovery_num_leaves``, ``discovery_min_child_samples``): with
   the ``all`` settings its score varied with the seed and the number of trees more than it beat EASE
   by. ``min_child_samples`` never exceeds the training rows divided by twice the leaves, so small
   shops still grow trees. Deterministic (fixed seeds,
   ``deterministic=True``); the rankers are fitted with ``n_jobs`` threads (default 1: on a shared
   2-core machine more threads were many times slower per tree; alone on 2 cores, 2 threads fit 1.8x
   faster) and the same trees whatever their number (histograms per feature, ``force_col_wise``; only
   the validation NDCG LightGBM reports, summed over threads, may differ in its last bits), and
   numpy/scipy BLAS always use one thread in the fit, so that EASE's weights, and with them the lists,
   do not depend on the machine's cores either. Scoring the candidates of every
   customer for the lists uses the rankers compiled to machine code (:mod:`training.recommend.compiled`:
   the same scores up to float rounding, about 3x faster) in a background thread (``predict_jobs - 1``
   threads, at least one) while the next chunk of customers is built; the scores do not depend on the
   number of threads.
4. At ``t``: candidates for every customer with an order in the ``lookback_days`` before ``t`` (the
   customers the rankers were trained and validated on), scored in chunks of ``build_chunk`` customers;
   the top ``list_size`` of both lists are stored per customer with a reason (int32 items, float32
   scores), so :meth:`Recommender.recommend` only filters and formats (reasons are computed once for
   the rows kept in either list). A customer whose last order is older (lapsed) gets, when asked, the
   items most often bought with what they bought (``source`` ``history``): the rankers never saw such
   customers, and skipping them saves a quarter of the list time on the synthetic 1M shop.

Without enough history for a ranker (no training cutoff with buyers), lists fall back to a fixed
ordering: own items by orders and recency, then ``together`` + EASE + ``similar`` scores, then
popularity (``fit_info_["ranker"]`` says which).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightgbm import LGBMRanker, early_stopping

from training.recommend.baselines import EASE_LAMBDAS, choose_ease_lambda
from training.recommend.candidates import (CandidateBuilder, CandidateConfig, feature_names,
                                           fit_cutoff_models, snapshot_and_together, unique_ints)
from training.recommend.compiled import compiled_predict
from training.recommend.data import (as_utc, DAY_US, RECENT_DAYS, YEAR_DAYS, Encoded, Snapshot, in_sorted,
                                    run_starts)
from training.recommend.similarity import thread_limit

# reason codes of stored list items
R_BOUGHT, R_CART, R_VIEW, R_TOGETHER, R_SIMILAR, R_CATEGORY, R_SEASON, R_TRENDING = range(8)
LISTS = ("all", "discovery")
PROGRESS_EVERY_S = 30.0  # a progress line at least this often while the lists are computed
# candidate columns _reasons reads (those the shop has)
REASON_COLUMNS = ("cust", "item", "bought", "n_orders", "rank_season", "cat_share", "rank_category", "rank_ease",
                  "rank_similar", "s_together", "rel_together", "views", "carts")


class Recommendation(NamedTuple):
    """One recommended item."""

    product_id: str
    score: float
    reason: str


@dataclass
class Recommendations:
    """The answer of :meth:`Recommender.recommend`: the items (iterable, indexable) and a status.

    ``customer_known``: the customer had a purchase before ``as_of``. ``source``: ``personal`` (the
    customer's precomputed list), ``history`` (a customer with no order in the ``lookback_days`` before
    ``as_of``: the items most often bought with theirs), ``bought_together`` (unknown customer with
    context products) or ``trending``. ``padded``: how many trending items were appended to reach ``k``.
    """

    items: list[Recommendation] = field(default_factory=list)
    customer_known: bool = False
    source: str = "trending"
    padded: int = 0

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]

    @property
    def product_ids(self) -> list[str]:
        return [r.product_id for r in self.items]

    def to_frame(self) -> pd.DataFrame:
        """DataFrame(rank, product_id, score, reason)."""
        df = pd.DataFrame(self.items, columns=["product_id", "score", "reason"])
        df.insert(0, "rank", np.arange(1, len(df) + 1))
        return df


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


class Recommender:
    """Personal top-k lists (``all`` and never-bought ``discovery``), similar items and bought-together.

    Hyperparameters are constructor arguments (scikit-learn style); :meth:`fit` takes the data and the
    as-of time. The fitted object holds only compact arrays and pickles.
    """

    def __init__(
        self,
        lookback_days: int = YEAR_DAYS,
        cutoff_step_days: int = 30,
        ease_lambdas: Iterable[float] = EASE_LAMBDAS,
        candidates: CandidateConfig | None = None,
        list_size: int = 100,
        discovery_model: bool = True,
        refit: bool = False,
        use_ranker: bool = True,
        n_estimators: int = 300,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        max_bin: int = 63,
        early_stopping_rounds: int = 30,
        max_negatives: int | None = 20,
        discovery_max_negatives: int | None = 50,
        discovery_num_leaves: int | None = 15,
        discovery_min_child_samples: int | None = 200,
        discovery_max_bin: int | None = 255,
        max_training_customers: int | None = None,
        build_chunk: int = 4096,
        n_jobs: int = 1,
        predict_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.lookback_days = lookback_days
        self.cutoff_step_days = cutoff_step_days
        self.ease_lambdas = tuple(ease_lambdas)
        self.candidates = candidates
        self.list_size = list_size
        self.discovery_model = discovery_model
        self.refit = refit
        self.use_ranker = use_ranker
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.early_stopping_rounds = early_stopping_rounds
        self.max_negatives = max_negatives
        self.discovery_max_negatives = discovery_max_negatives
        self.discovery_num_leaves = discovery_num_leaves
        self.discovery_min_child_samples = discovery_min_child_samples
        self.discovery_max_bin = discovery_max_bin
        self.max_training_customers = max_training_customers
        self.build_chunk = build_chunk
        self.n_jobs = n_jobs
        self.predict_jobs = predict_jobs
        self.random_state = random_state

    # ------------------------------------------------------------------------------------------
    # fitting
    # ------------------------------------------------------------------------------------------
    def _tree_params(self, name: str, n_rows: int) -> tuple[int, int]:
        """(num_leaves, min_child_samples) of the ``all`` or ``discovery`` ranker trained on ``n_rows``
        rows; ``min_child_samples`` is capped at ``n_rows // (2 * num_leaves)`` (at least 1)."""
        leaves, mcs = self.num_leaves, self.min_child_samples
        if name == "discovery":
            leaves = self.discovery_num_leaves or leaves
            mcs = self.discovery_min_child_samples or mcs
        return int(leaves), int(max(1, min(mcs, n_rows // (2 * leaves))))

    def sessions_since(self, as_of, horizon_days: int = 90, training_cutoffs: int = 4) -> pd.Timestamp:
        """The earliest session event :meth:`fit` with these arguments reads: session signals look back
        ``RECENT_DAYS`` (30) from each cutoff, the earliest cutoff being ``as_of - H - training_cutoffs *
        cutoff_step_days``. Sessions before it may be left out of the data without changing the fit."""
        days = int(horizon_days) + int(training_cutoffs) * int(self.cutoff_step_days) + RECENT_DAYS
        return as_utc(as_of) - pd.Timedelta(days=days)

    def _ranker(self, n_estimators: int, num_leaves: int, min_child_samples: int, name: str = "all") -> LGBMRanker:
        max_bin = (self.discovery_max_bin or self.max_bin) if name == "discovery" else self.max_bin
        return LGBMRanker(
            objective="lambdarank", n_estimators=n_estimators, learning_rate=self.learning_rate,
            num_leaves=num_leaves, min_child_samples=min_child_samples, subsample=self.subsample,
            subsample_freq=1, colsample_bytree=self.colsample_bytree, reg_lambda=self.reg_lambda, max_bin=int(max_bin),
            lambdarank_truncation_level=20, random_state=self.random_state, n_jobs=self.n_jobs,
            deterministic=True, force_col_wise=True, verbose=-1)

    def _training_customers(self, rows: np.ndarray, cutoff) -> np.ndarray:
        """``rows`` (sorted customer codes), or a seeded random sample of ``max_training_customers`` of them
        when there are more (seed: ``random_state`` and the cutoff's day, so a cutoff gets the same sample
        whatever the other cutoffs are). Sorted."""
        cap = self.max_training_customers
        if cap is None or len(rows) <= cap:
            return rows
        day = int(as_utc(cutoff).value // (DAY_US * 1000))
        rng = np.random.default_rng([int(self.random_state), day])
        return np.sort(rng.choice(rows, size=int(cap), replace=False))

    def _cutoff_chunks(self, enc: Encoded, cutoff, horizon_days: int, lam: float | None, cfg: CandidateConfig,
                       code: int, snap: Snapshot | None = None, together: sp.csr_matrix | None = None
                       ) -> tuple[Iterable[pd.DataFrame], dict]:
        """Labelled candidates at one cutoff, in chunks of ``build_chunk`` customers (customer order):
        the customers with an order in the lookback who bought in the horizon (at most
        ``max_training_customers``, :meth:`_training_customers`). Chunks carry the features, ``cust``,
        ``bought``, ``label`` (int8) and ``cutoff`` (= ``code``, int16). Also returns a dict with the
        number of (customer, item) pairs those customers bought (``n_labels``) and of buyers before
        sampling (``buyers``), filled before the first chunk is built. ``snap``, ``together``: the snapshot
        and the ``together`` neighbours at ``cutoff`` if already computed."""
        if snap is None:
            snap, together = snapshot_and_together(enc, cutoff, horizon_days, cfg)
        labels = enc.labels(cutoff, horizon_days)
        buyers = unique_ints(labels // enc.n_items)
        rows = buyers[snap.cust_last_days[buyers] <= self.lookback_days]
        stats = {"buyers": int(len(rows)), "n_labels": 0}
        rows = self._training_customers(rows, cutoff)
        stats["customers"] = int(len(rows))
        if len(rows) == 0:
            return iter(()), stats
        stats["n_labels"] = int(in_sorted(labels // enc.n_items, rows).sum())
        builder = CandidateBuilder(snap, fit_cutoff_models(snap, lam, cfg, together=together, jobs=self.n_jobs), cfg)
        keep = [*self.features_, "cust"]

        def chunks():
            for lo in range(0, len(rows), self.build_chunk):
                df = builder.build(rows[lo:lo + self.build_chunk])
                if df.empty:
                    continue
                label = in_sorted(df["key"].to_numpy(), labels).astype(np.int8)
                df = df[keep]
                df["cust"] = df["cust"].astype(np.int32)
                df["label"] = label
                df["cutoff"] = np.int16(code)
                yield df

        return chunks(), stats

    @staticmethod
    def _groups(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """Rows of groups (cutoff, customer) with at least one positive, and the group sizes (in row order)."""
        g = df.groupby(["cutoff", "cust"], sort=False)["label"]
        keep = g.transform("max").to_numpy() > 0
        df = df.loc[keep]
        sizes = df.groupby(["cutoff", "cust"], sort=False).size().to_numpy()
        return df, sizes

    def _sample_negatives(self, df: pd.DataFrame, name: str = "all", rng: np.random.Generator | None = None
                          ) -> pd.DataFrame:
        """Training rows only: every positive and at most ``max_negatives`` (``discovery_max_negatives``
        for the ``discovery`` ranker; None: all) random negatives per (cutoff, customer) query (seeded
        by ``random_state``). One uniform number is drawn per row in row order, so sampling consecutive
        parts of a frame (whole queries each) with one generator ``rng`` keeps the same rows as sampling
        the whole frame with a new generator."""
        m = self.discovery_max_negatives if name == "discovery" else self.max_negatives
        if m is None or len(df) == 0:
            return df
        neg = df["label"].to_numpy() == 0
        q = df.groupby(["cutoff", "cust"], sort=False).ngroup().to_numpy()
        rng = np.random.default_rng(self.random_state) if rng is None else rng
        u = rng.random(len(df))
        order = np.lexsort((u, neg, q))  # per query: positives first, then negatives at random
        qo, no = q[order], neg[order]
        start = np.r_[0, np.flatnonzero(np.diff(qo)) + 1]
        sizes = np.diff(np.r_[start, len(qo)])
        n_pos = np.repeat(np.add.reduceat((~no).astype(np.int64), start), sizes) if len(start) else 0
        first = np.repeat(start, sizes)
        rank = np.arange(len(qo)) - first - n_pos  # 0-based rank among the query's negatives
        keep = np.zeros(len(df), dtype=bool)
        keep[order] = ~no | (rank < m)
        return df.loc[keep]

    def _train(self, tr: pd.DataFrame, rows_before: int, va: pd.DataFrame | None, features: list[str],
               name: str = "all") -> tuple[LGBMRanker, dict]:
        """Fit one ranker on ``tr`` (queries with a positive, negatives already sampled; ``rows_before``
        rows before sampling), early stopping on ``va`` (queries with a positive, unsampled)."""
        g_tr = tr.groupby(["cutoff", "cust"], sort=False).size().to_numpy()
        leaves, mcs = self._tree_params(name, len(tr))
        info: dict = {"train_rows": int(len(tr)), "train_rows_before_sampling": int(rows_before),
                      "train_groups": int(len(g_tr)), "num_leaves": leaves, "min_child_samples": mcs}
        model = self._ranker(self.n_estimators, leaves, mcs, name)
        kw: dict = {}
        g_va = va.groupby(["cutoff", "cust"], sort=False).size().to_numpy() if va is not None else None
        if va is not None and len(g_va):
            kw = {"eval_X": (va[features],), "eval_y": (va["label"].to_numpy(),), "eval_group": [g_va],
                  "eval_at": [10],
                  "callbacks": [early_stopping(self.early_stopping_rounds, verbose=False)]}
            info["valid_groups"] = int(len(g_va))
        t0 = time.perf_counter()
        model.fit(tr[features], tr["label"].to_numpy(), group=g_tr, **kw)
        info["seconds"] = round(time.perf_counter() - t0, 2)
        best = int(model.best_iteration_ or self.n_estimators) if kw else self.n_estimators
        info["best_iteration"] = best
        if kw:
            info["valid_ndcg@10"] = float(model.best_score_["valid_0"]["ndcg@10"])
        if kw and self.refit:
            t0 = time.perf_counter()
            both = pd.concat([tr, self._sample_negatives(va, name)], ignore_index=True)
            g_both = both.groupby(["cutoff", "cust"], sort=False).size().to_numpy()
            model = self._ranker(best, leaves, mcs, name)
            model.fit(both[features], both["label"].to_numpy(), group=g_both)
            info["refit_rows"] = int(len(both))
            info["refit_seconds"] = round(time.perf_counter() - t0, 2)
        return model, info

    def _training_data(self, enc: Encoded, cuts: list, valid_cut, horizon_days: int, lam: float | None,
                       cfg: CandidateConfig, say: Callable[[str], None], snaps: dict | None = None) -> dict:
        """The rankers' training and validation rows, built cutoff by cutoff and chunk by chunk so that only
        the kept rows accumulate: per list (``all``; ``discovery`` = the never-bought candidates), the
        queries with a positive, the training ones with their negatives sampled (:meth:`_sample_negatives`,
        one generator per list over the rows in order, exactly as if sampled after concatenating them).
        ``snaps``: (snapshot, together neighbours) already computed, by cutoff, taken out as they are
        used (the validation cutoff's, shared with the choice of EASE's lambda); the validation cutoff
        comes first, so that its snapshot is released before the training cutoffs' are built."""
        lists = ("all", "discovery") if self.discovery_model else ("all",)
        rng = {name: np.random.default_rng(self.random_state) for name in lists}
        parts: dict = {name: [] for name in lists}
        vparts: dict = {name: [] for name in lists}
        out: dict = {"cutoffs": [], "positives": 0, "n_labels": 0, "buyers": [], "customers": [],
                     "rows_before": dict.fromkeys(lists, 0), "positives_by_list": dict.fromkeys(lists, 0)}
        for code, c in [(len(cuts), valid_cut), *enumerate(cuts)]:
            validation = code == len(cuts)
            say(f"candidates at {c.date()}" + (" (validation)" if validation else ""))
            snap, together = (snaps or {}).pop(c, (None, None))
            chunks, stats = self._cutoff_chunks(enc, c, horizon_days, lam, cfg, code, snap=snap, together=together)
            del snap, together
            any_rows = False
            for df in chunks:
                any_rows = True
                if not validation:
                    out["positives"] += int(df["label"].sum())
                for name in lists:
                    d = df if name == "all" else df.loc[df["bought"].to_numpy() == 0]
                    if not validation:
                        out["positives_by_list"][name] += int(d["label"].sum())
                    d, _ = self._groups(d)
                    if validation:
                        vparts[name].append(d)
                    else:
                        out["rows_before"][name] += len(d)
                        parts[name].append(self._sample_negatives(d, name, rng[name]))
                del df, d
            if not validation:
                out["n_labels"] += stats["n_labels"]
                out["buyers"].append(stats["buyers"])
                out["customers"].append(stats["customers"])
                if any_rows:
                    out["cutoffs"].append(c)
            else:
                out["valid_buyers"], out["valid_customers"] = stats["buyers"], stats["customers"]
                out["valid_rows"] = any_rows
        cat = lambda ps: pd.concat(ps, ignore_index=True) if ps else None  # noqa: E731
        out["train"] = {name: cat(parts.pop(name)) for name in lists}
        out["valid"] = {name: cat(vparts.pop(name)) for name in lists}
        return out

    def fit(self, orders: pd.DataFrame | Encoded, products: pd.DataFrame | None = None,
            sessions: pd.DataFrame | None = None, *, as_of=None, horizon_days: int = 90, training_cutoffs: int = 4,
            progress: Callable[[str], None] | None = None) -> "Recommender":
        """Fit on events strictly before ``as_of`` (default: the day after the last order line).

        ``orders`` may be the tables already encoded (an :class:`Encoded` as of ``as_of``, without
        ``products`` and ``sessions``), so that a large shop's tables need not stay in memory during the fit;
        the fit releases the encoding's events before computing the lists (:meth:`Encoded.release_events`),
        so an encoding serves one fit.
        numpy / scipy (BLAS) run on one thread during the fit (its results do not depend on the cores);
        LightGBM and the item co-occurrence counts (exact, whatever the threads) with ``n_jobs``.
        """
        if isinstance(orders, Encoded):
            if products is not None or sessions is not None:
                raise ValueError("fit(Encoded): the products and sessions are in the encoding already")
            if as_of is not None and as_utc(as_of) != orders.as_of:
                raise ValueError(f"fit(Encoded): as_of {as_utc(as_of)} differs from the encoding's {orders.as_of}")
        with thread_limit(1):
            return self._fit(orders, products, sessions, as_of=as_of, horizon_days=horizon_days,
                             training_cutoffs=training_cutoffs, progress=progress)

    def _fit(self, orders, products, sessions, *, as_of, horizon_days, training_cutoffs, progress) -> "Recommender":
        say = progress or (lambda _m: None)
        t0 = time.perf_counter()
        if as_of is None:
            as_of = (orders.as_of if isinstance(orders, Encoded)
                     else as_utc(orders["ordered_at"].max()).normalize() + pd.Timedelta(days=1))
        self.as_of_ = as_utc(as_of)
        self.horizon_days_ = int(horizon_days)
        cfg = self.candidates or CandidateConfig()
        enc = orders if isinstance(orders, Encoded) else Encoded(orders, products, sessions, self.as_of_)
        del orders, products, sessions
        H = pd.Timedelta(days=horizon_days)
        valid_cut = self.as_of_ - H
        step = pd.Timedelta(days=self.cutoff_step_days)
        min_history = pd.Timedelta(days=min(90, horizon_days))
        start = pd.Timestamp(enc.data_start, unit="us", tz="UTC")
        train_cuts = [valid_cut - step * j for j in range(1, int(training_cutoffs) + 1)]
        train_cuts = sorted(c for c in train_cuts if c >= start + min_history)
        info: dict = {"as_of": str(self.as_of_), "horizon_days": self.horizon_days_,
                      "customers": enc.n_cust, "items": enc.n_items,
                      "has_categories": enc.has_categories, "has_sessions": enc.has_sessions}
        self.features_ = feature_names(enc.has_categories, enc.has_sessions)

        lam, snaps = None, {}
        if valid_cut >= start + min_history:
            say(f"EASE lambda on {valid_cut.date()}")
            if self.use_ranker and train_cuts:  # the validation cutoff's candidates need the together model
                valid_snap, valid_together = snapshot_and_together(enc, valid_cut, horizon_days, cfg)
            else:
                valid_snap, valid_together = Snapshot(enc, valid_cut, horizon_days), None
            lam, lam_scores = choose_ease_lambda(enc, valid_cut, horizon_days, self.ease_lambdas,
                                                 min_buyers=cfg.ease_min_buyers, max_items=cfg.ease_max_items,
                                                 lookback_days=self.lookback_days, snap=valid_snap,
                                                 jobs=self.n_jobs)
            snaps = {valid_cut: (valid_snap, valid_together)}
            del valid_snap, valid_together
            info["ease_lambda_scores"] = lam_scores
        if lam is None:
            lam = float(self.ease_lambdas[len(self.ease_lambdas) // 2])
        self.ease_lambda_ = lam
        info["ease_lambda"] = lam

        self.ranker_all_ = self.ranker_discovery_ = None
        if self.use_ranker and train_cuts and valid_cut >= start + min_history:
            data = self._training_data(enc, train_cuts, valid_cut, horizon_days, lam, cfg, say, snaps)
            train, valid = data["train"], data["valid"]
            if train["all"] is not None and data["positives"] > 0:
                info["training_cutoffs"] = [str(c.date()) for c in data["cutoffs"]]
                info["validation_cutoff"] = str(valid_cut.date()) if data["valid_rows"] else None
                info["training_customers"] = data["customers"]
                if data["customers"] != data["buyers"]:
                    info["training_customers_before_sampling"] = data["buyers"]
                    info["validation_customers"] = data["valid_customers"]
                    info["validation_customers_before_sampling"] = data["valid_buyers"]
                # share of the items training customers bought that were among their candidates
                info["candidate_recall"] = round(float(data["positives"] / max(1, data["n_labels"])), 4)
                say("ranker (all)")
                self.ranker_all_, info["all"] = self._train(train["all"], data["rows_before"]["all"], valid["all"],
                                                            self.features_)
                train["all"] = valid["all"] = None
                if self.discovery_model and data["positives_by_list"]["discovery"] > 0:
                    say("ranker (discovery)")
                    self.ranker_discovery_, info["discovery"] = self._train(
                        train["discovery"], data["rows_before"]["discovery"], valid["discovery"], self.features_,
                        name="discovery")
            del data, train, valid
        snaps.clear()  # (unused without rankers)
        info["ranker"] = "lambdarank" if self.ranker_all_ is not None else "fallback ordering (too little history)"

        say(f"lists as of {self.as_of_.date()}")
        self._precompute(enc, cfg, say)
        info["fit_seconds"] = round(time.perf_counter() - t0, 2)
        self.fit_info_ = info
        return self

    def _precompute(self, enc: Encoded, cfg: CandidateConfig, say: Callable[[str], None] = lambda _m: None) -> None:
        """Catalog, neighbours and both lists as of ``self.as_of_``. The encoding's events are released once
        the last snapshot and its order baskets are computed (the item-item models and lists need neither)."""
        snap = Snapshot(enc, self.as_of_, self.horizon_days_)
        baskets = snap.basket_matrix()
        enc.release_events()  # the item-item models need only the baskets of the events
        models = fit_cutoff_models(snap, self.ease_lambda_, cfg, baskets=baskets, jobs=self.n_jobs)
        del baskets
        say(f"lists: snapshot and item-item models as of {self.as_of_.date()} ready")
        self._store_catalog(enc, snap, models)
        self._store_lists(enc, snap, CandidateBuilder(snap, models, cfg), say)

    def refresh(self, orders: pd.DataFrame, products: pd.DataFrame | None = None,
                sessions: pd.DataFrame | None = None, *, as_of, progress: Callable[[str], None] | None = None
                ) -> "Recommender":
        """Recompute the lists as of a new date from the events strictly before it, with the fitted rankers
        and EASE ``lambda`` (nothing is learned: this is what ``ecrm score --as-of`` does)."""
        if not hasattr(self, "features_"):
            raise RuntimeError("this Recommender is not fitted yet: call fit() first")
        with thread_limit(1):  # as in fit(): EASE's weights the same on any machine
            self.as_of_ = as_utc(as_of)
            if progress is not None:
                progress(f"lists as of {self.as_of_.date()}")
            enc = Encoded(orders, products, sessions, self.as_of_)
            features = feature_names(enc.has_categories, enc.has_sessions)
            if features != self.features_:
                raise ValueError("the data to refresh from lacks inputs the rankers were trained with "
                                 f"(categories: {enc.has_categories}, sessions: {enc.has_sessions})")
            self._precompute(enc, self.candidates or CandidateConfig(), progress or (lambda _m: None))
        return self

    # ------------------------------------------------------------------------------------------
    # what recommend() needs, precomputed
    # ------------------------------------------------------------------------------------------
    def _store_catalog(self, enc: Encoded, snap: Snapshot, models) -> None:
        self.item_ids_ = enc.item_ids
        self.item_index_ = dict(enc.item_index)
        self.item_name_ = enc.item_name
        self.item_cat_ = enc.item_cat
        self.cat_names_ = enc.cat_names
        self.cust_ids_ = enc.cust_ids
        self.cust_index_ = {c: i for i, c in enumerate(enc.cust_ids)}
        self.item_last_sold_days_ = snap.item_last_days.astype(np.float32)
        sold = np.flatnonzero(snap.buyers_all > 0)
        # trending: two-week half-life purchases, then 90-day and all-time buyers
        self.trending_ = sold[np.lexsort((sold, -snap.buyers_all[sold], -snap.buyers_pop[sold],
                                          -snap.trend_score[sold]))].astype(np.int32)
        self.trending_score_ = snap.trend_score[self.trending_].astype(np.float32)
        for name, S in (("together", models.together), ("similar", models.similar)):
            S = sp.csr_matrix(S)
            order = np.lexsort((S.indices, -S.data, np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))))
            setattr(self, f"{name}_ptr_", S.indptr.astype(np.int64))
            setattr(self, f"{name}_items_", S.indices[order].astype(np.int32))
            setattr(self, f"{name}_scores_", S.data[order].astype(np.float32))
        hist = snap.history_matrix("binary")
        self.bought_ptr_, self.bought_items_ = hist.indptr.astype(np.int64), hist.indices.astype(np.int32)

    def _fallback_score(self, df: pd.DataFrame) -> np.ndarray:
        """Without a ranker: own items first (most orders, then most recent), then the sum of the relative
        ``together``, EASE and ``similar`` scores (each in [0, 1]), then 90-day popularity."""
        bought = df["bought"].to_numpy() > 0
        recency = 9.0 / (1.0 + np.nan_to_num(df["days_since_last"].to_numpy(dtype=float)) / 30.0)  # in (0, 9]
        own = 1000.0 + 10.0 * df["n_orders"].to_numpy(dtype=float) + recency
        collab = (np.nan_to_num(df["rel_together"].to_numpy(dtype=float))
                  + np.nan_to_num(df["rel_ease"].to_numpy(dtype=float).clip(min=0))
                  + np.nan_to_num(df["rel_similar"].to_numpy(dtype=float)))
        pop = np.nan_to_num(df["log_buyers_pop"].to_numpy(dtype=float)) / 100.0
        return np.where(bought, own, collab + pop)

    def _store_lists(self, enc: Encoded, snap: Snapshot, builder: CandidateBuilder,
                     say: Callable[[str], None] = lambda _m: None) -> None:
        """Both lists of every customer with an order in the ``lookback_days`` before ``as_of``: candidates
        scored in chunks of ``build_chunk`` customers, the top ``list_size`` per customer (score descending,
        ties by item code) kept with a reason. A chunk is scored in a background thread (with
        ``predict_jobs - 1`` threads, at least one: the compiled rankers run without the GIL) while the next
        one is built, so building and scoring use a core each (100k customers, 2 cores: lists 36 -> 24 s).
        (Building two chunks at once in threads was no faster: the candidate building holds the GIL.)"""
        rows = np.flatnonzero(snap.cust_last_days <= self.lookback_days)  # lapsed customers: no list
        threads = max(1, int(getattr(self, "predict_jobs", 1)) - 1)  # (models pickled before it existed: 1)
        scorers = [None, None]
        for j, ranker in enumerate((self.ranker_all_, self.ranker_discovery_)):
            if ranker is not None and len(rows):
                scorers[j] = compiled_predict(ranker.booster_, threads)
        results, said = [], time.monotonic()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecrm-lists") as pool:
            pending = None
            for lo in range(0, len(rows), self.build_chunk):
                df = builder.build(rows[lo:lo + self.build_chunk])
                X = df[self.features_].to_numpy(dtype=np.float32) if not df.empty else None
                scoring = pool.submit(self._score_chunk, df, X, *scorers)
                del df, X
                if pending is not None:
                    results.append(self._keep_chunk(*pending.result(), builder))
                pending = scoring
                done = min(lo + self.build_chunk, len(rows))
                if time.monotonic() - said >= PROGRESS_EVERY_S and done < len(rows):
                    say(f"lists: {done:,}/{len(rows):,} customers with an order in the last {self.lookback_days} days")
                    said = time.monotonic()
            if pending is not None:
                results.append(self._keep_chunk(*pending.result(), builder))
                say(f"lists: {len(rows):,}/{len(rows):,} customers with an order in the last {self.lookback_days} days")
        for j, name in enumerate(LISTS):
            parts = [res[j] for res in results if res is not None]
            cols = [np.array([], dtype=np.int32), np.array([], dtype=np.float32), np.array([], dtype=np.int8),
                    np.array([], dtype=np.int32)]
            counts = np.zeros(enc.n_cust, dtype=np.int64)
            if parts:
                cols = [np.concatenate([part[c] for part in parts]) for c in range(4)]
                for part in parts:  # (the chunks' customers do not overlap)
                    counts[part[4]] = part[5]
            setattr(self, f"{name}_ptr_", np.r_[0, np.cumsum(counts)].astype(np.int64))
            for attr, col in zip(("items", "scores", "code", "arg"), cols):
                setattr(self, f"{name}_{attr}_", col)
        del results

    def _score_chunk(self, df: pd.DataFrame, X: np.ndarray | None, score_all, score_disc
                     ) -> tuple[pd.DataFrame, np.ndarray | None, np.ndarray | None]:
        """The candidates ``df`` (features ``X``) with their scores for both lists (``-inf``: not in the
        ``discovery`` list, the items bought before); ``(df, None, None)`` without candidates."""
        if df.empty:
            return df, None, None
        s_all = score_all(X) if score_all is not None else self._fallback_score(df)
        d = df["bought"].to_numpy() == 0
        if score_disc is not None:
            s_disc = np.full(len(df), -np.inf)
            if d.any():
                s_disc[d] = score_disc(X[d])
        else:
            s_disc = np.where(d, s_all, -np.inf)
        return df, s_all, s_disc

    def _keep_chunk(self, df: pd.DataFrame, s_all: np.ndarray | None, s_disc: np.ndarray | None,
                    builder: CandidateBuilder) -> tuple | None:
        """The kept rows of both lists of a scored chunk (:meth:`_score_chunk`): per list (items int32,
        scores float32, reason codes int8, reason arguments int32; by customer, then rank) and the
        customers with their numbers of rows; None without candidates."""
        if s_all is None:
            return None
        cust, item = df["cust"].to_numpy(), df["item"].to_numpy()
        kept = {}
        for name, s in (("all", s_all), ("discovery", s_disc)):
            idx = np.flatnonzero(np.isfinite(s))
            idx = idx[np.lexsort((item[idx], -s[idx], cust[idx]))]
            first = run_starts(cust[idx])
            rank = np.arange(len(idx)) - np.repeat(first, np.diff(np.r_[first, len(idx)]))
            kept[name] = idx[rank < self.list_size]
        # reasons once for the rows in either list (the lists share most of their non-bought items)
        rows_r = unique_ints(np.concatenate(list(kept.values())))
        code, arg = self._reasons(df[[c for c in REASON_COLUMNS if c in df.columns]].iloc[rows_r], builder)
        out = []
        for name, s in (("all", s_all), ("discovery", s_disc)):
            idx = kept[name]
            at = np.searchsorted(rows_r, idx)
            # stored dtypes right away: only the compact kept rows accumulate over the chunks
            c = cust[idx]
            start = run_starts(c)
            out.append((item[idx].astype(np.int32), s[idx].astype(np.float32), code[at].astype(np.int8),
                        arg[at].astype(np.int32), c[start], np.diff(np.r_[start, len(c)])))
        return tuple(out)

    def _reasons(self, df: pd.DataFrame, builder: CandidateBuilder) -> tuple[np.ndarray, np.ndarray]:
        """A reason code and argument (times bought, product or category code) per candidate row."""
        n = len(df)
        code = np.full(n, R_TRENDING, dtype=np.int8)
        arg = np.full(n, -1, dtype=np.int64)
        bought = df["bought"].to_numpy() > 0
        has = lambda col: df[col].notna().to_numpy() if col in df else np.zeros(n, bool)  # noqa: E731
        todo = ~bought
        # most generic first, overwritten by more specific signals
        season = has("rank_season") & todo
        code[season] = R_SEASON
        if "cat_share" in df:
            cat = builder.snap.enc.item_cat[df["item"].to_numpy()]
            in_cat = (df["cat_share"].fillna(0).to_numpy() > 0) & (df["rank_category"].fillna(np.inf).to_numpy()
                                                                   <= builder.cfg.n_category) & todo
            code[in_cat] = R_CATEGORY
            arg[in_cat] = cat[in_cat]
        collab = (has("rank_ease") | has("rank_similar")) & todo
        code[collab] = R_SIMILAR
        # "often bought with X" is the more specific reason: used when the item's basket co-occurrence with
        # the customer's items is at least a quarter of their strongest one (or nothing else explains it)
        tog = todo & (df["s_together"].fillna(0).to_numpy() > 0)
        use_tog = tog & ((df["rel_together"].fillna(0).to_numpy() >= 0.25) | ~collab)
        if use_tog.any():
            who = builder.together_contributor(df["cust"].to_numpy()[use_tog], df["item"].to_numpy()[use_tog])
            idx = np.flatnonzero(use_tog)
            ok = who >= 0
            code[idx[ok]] = R_TOGETHER
            arg[idx[ok]] = who[ok]
        if "views" in df:
            view = (df["views"].to_numpy() > 0) & todo
            code[view] = R_VIEW
            cart = (df["carts"].to_numpy() > 0) & todo
            code[cart] = R_CART
        code[bought] = R_BOUGHT
        arg[bought] = df["n_orders"].to_numpy()[bought].astype(np.int64)
        return code, arg

    # ------------------------------------------------------------------------------------------
    # serving
    # ------------------------------------------------------------------------------------------
    def _reason(self, code: int, arg: int) -> str:
        if code == R_BOUGHT:
            return f"bought before ({_times(int(arg))})"
        if code == R_CART:
            return "added to the cart recently, not bought"
        if code == R_VIEW:
            return "viewed recently, not bought"
        if code == R_TOGETHER:
            return f"often bought with {self.item_name_[arg]}"
        if code == R_SIMILAR:
            return "similar customers bought it"
        if code == R_CATEGORY:
            return f"popular in category {self.cat_names_[arg]}"
        if code == R_SEASON:
            return "popular at this time of year"
        return "trending"

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_ids_"):
            raise RuntimeError("this Recommender is not fitted yet: call fit() first")

    def _codes(self, product_ids, what: str) -> list[int]:
        """Item codes of ``product_ids`` (a single id or an iterable); ValueError naming unknown ones."""
        if isinstance(product_ids, str):
            product_ids = [product_ids]
        codes, unknown = [], []
        for p in product_ids:
            i = self.item_index_.get(str(p))
            (codes.append(i) if i is not None else unknown.append(str(p)))
        if unknown:
            raise ValueError(f"unknown product ids in {what}: {', '.join(unknown)}")
        return codes

    def _allowed(self, exclude: list[int], categories, sold_within_days, context: list[int]) -> np.ndarray | None:
        """Boolean mask over items, or None when nothing is filtered."""
        if not exclude and categories is None and sold_within_days is None and not context:
            return None
        allowed = np.ones(len(self.item_ids_), dtype=bool)
        allowed[exclude] = False
        allowed[context] = False
        if categories is not None:
            if isinstance(categories, str):
                categories = [categories]
            cats = [str(c) for c in categories]
            index = {name: j for j, name in enumerate(self.cat_names_)}
            unknown = [c for c in cats if c not in index]
            if unknown:
                raise ValueError(f"unknown categories: {', '.join(unknown)}")
            allowed &= np.isin(self.item_cat_, [index[c] for c in cats])
        if sold_within_days is not None:
            allowed &= self.item_last_sold_days_ <= float(sold_within_days)
        return allowed

    def recommend(self, customer_id, k: int = 10, list: str = "all", exclude_purchased: bool = False,  # noqa: A002
                  exclude_product_ids=(), categories=None, context_product_ids=(),
                  sold_within_days: float | None = None) -> Recommendations:
        """Top ``k`` items for one customer, each with a score and a reason, and a status.

        - ``list``: ``"all"`` (may repeat purchases) or ``"discovery"`` (items the customer never bought).
        - ``exclude_purchased``: drop items the customer bought before ``as_of`` from any list.
        - ``exclude_product_ids``: never return these. ``categories``: only items in these categories.
          ``sold_within_days``: only items someone bought within that many days before ``as_of``.
        - ``context_product_ids`` (the cart, the page viewed) are never returned; for a customer unknown
          at ``as_of`` the list starts with the items most often bought with them.

        Unknown customers get trending items; customers whose last order is more than ``lookback_days``
        before ``as_of`` (no precomputed list) the items most often bought with what they bought
        (``source`` ``history``). Unknown product ids (in ``exclude_product_ids`` or
        ``context_product_ids``) and unknown categories raise ValueError naming them. Lists are padded
        with trending items when filters leave fewer than ``k``. Scores are comparable within one list.
        """
        self._check_fitted()
        if list not in LISTS:
            raise ValueError(f"list must be one of {LISTS}, got {list!r}")
        k = int(k)
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        exclude = self._codes(exclude_product_ids, "exclude_product_ids")
        context = self._codes(context_product_ids, "context_product_ids")
        allowed = self._allowed(exclude, categories, sold_within_days, context)
        row = self.cust_index_.get(str(customer_id)) if customer_id is not None else None
        no_bought = exclude_purchased or list == "discovery"
        bought = (set(self.bought_items_[self.bought_ptr_[row]:self.bought_ptr_[row + 1]].tolist())
                  if row is not None and no_bought else set())
        items: builtins.list[int] = []
        scores: builtins.list[float] = []
        reasons: builtins.list[str] = []
        source = "trending"
        if row is not None and self.all_ptr_[row] == self.all_ptr_[row + 1]:
            # lapsed (no order in the lookback_days before as_of): no ranked list; the items most often
            # bought with what they bought, and with the context products
            source = "history"
            history = self.bought_items_[self.bought_ptr_[row]:self.bought_ptr_[row + 1]].tolist()
            for i, s, src in self._together(history + context, k, allowed):
                items.append(i)
                scores.append(s)
                reasons.append(f"often bought with {self.item_name_[src]}")
        elif row is not None:
            source = "personal"
            ptr = getattr(self, f"{list}_ptr_")
            a, b = int(ptr[row]), int(ptr[row + 1])
            it = getattr(self, f"{list}_items_")[a:b]
            ok = np.ones(len(it), dtype=bool) if allowed is None else allowed[it]
            if exclude_purchased and list == "all":
                ok &= self.all_code_[a:b] != R_BOUGHT
            sel = np.flatnonzero(ok)[:k]
            sc = getattr(self, f"{list}_scores_")
            code = getattr(self, f"{list}_code_")
            arg = getattr(self, f"{list}_arg_")
            for j in sel.tolist():
                items.append(int(it[j]))
                scores.append(float(sc[a + j]))
                reasons.append(self._reason(int(code[a + j]), int(arg[a + j])))
        elif context:
            source = "bought_together"
            for i, s, src in self._together(context, k, allowed):
                items.append(i)
                scores.append(s)
                reasons.append(f"often bought with {self.item_name_[src]}")
        n = len(items)
        if n < k:
            self._pad(items, scores, reasons, k, allowed, bought, categories)
        ids = self.item_ids_
        out = [Recommendation(str(ids[i]), s, r) for i, s, r in zip(items, scores, reasons)]
        return Recommendations(out, customer_known=row is not None, source=source, padded=len(items) - n)

    def _pad(self, items, scores, reasons, k, allowed, skip_items: set, categories) -> None:
        """Append trending items (allowed, not yet listed, not in ``skip_items``)."""
        cand = self.trending_ if allowed is None else self.trending_[allowed[self.trending_]]
        skip = set(items) | skip_items
        base = (min(scores) if scores else 0.0) - 1.0
        with_cat = categories is not None and len(self.cat_names_) > 0
        for i in cand.tolist():
            if len(items) >= k:
                break
            if i in skip:
                continue
            items.append(i)
            scores.append(base - 1e-3 * len(scores))
            c = self.item_cat_[i]
            reasons.append(f"popular in category {self.cat_names_[c]}" if with_cat and c >= 0 else "trending")

    def _together(self, context: builtins.list[int], k: int, allowed: np.ndarray | None
                  ) -> builtins.list[tuple[int, float, int]]:
        """Items most often bought with ``context`` items: (item, summed basket cosine, strongest context item)."""
        ptr, nb, sc = self.together_ptr_, self.together_items_, self.together_scores_
        total: dict[int, float] = {}
        best: dict[int, tuple[float, int]] = {}
        ctx = set(context)
        for c in dict.fromkeys(context):
            for i, s in zip(nb[ptr[c]:ptr[c + 1]].tolist(), sc[ptr[c]:ptr[c + 1]].tolist()):
                if i in ctx or (allowed is not None and not allowed[i]):
                    continue
                total[i] = total.get(i, 0.0) + s
                if s > best.get(i, (0.0, -1))[0]:
                    best[i] = (s, c)
        top = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return [(i, float(s), best[i][1]) for i, s in top]

    def similar_items(self, product_id, k: int = 10) -> builtins.list[tuple[str, float]]:
        """Items bought by the same customers as ``product_id`` (cosine), best first.

        ValueError for an unknown product id; [] for a product with no neighbours.
        """
        self._check_fitted()
        (i,) = self._codes([product_id], "product_id")
        a, b = self.similar_ptr_[i], self.similar_ptr_[i + 1]
        return [(str(self.item_ids_[j]), float(s))
                for j, s in zip(self.similar_items_[a:b][:k].tolist(), self.similar_scores_[a:b][:k].tolist())]

    def bought_together(self, product_ids, k: int = 10) -> builtins.list[tuple[str, float, str]]:
        """Items bought in the same orders as ``product_ids`` (summed basket cosine), with a reason.

        ValueError naming unknown product ids.
        """
        self._check_fitted()
        context = self._codes(product_ids, "product_ids")
        return [(str(self.item_ids_[i]), s, f"often bought with {self.item_name_[src]}")
                for i, s, src in self._together(context, k, None)]

    def recommend_batch(self, customer_ids, k: int = 10, list: str = "all") -> pd.DataFrame:  # noqa: A002
        """DataFrame(customer_id, rank 1..k, product_id, score, reason) for many customers: for each, what
        ``recommend(customer_id, k, list=list)`` returns. Customers with at least ``k`` items in their
        precomputed list are sliced from it at once (the batch outputs of a million customers); the
        others (unknown, lapsed, short lists) go through :meth:`recommend` one by one."""
        self._check_fitted()
        if list not in LISTS:
            raise ValueError(f"list must be one of {LISTS}, got {list!r}")
        k = int(k)
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        given = builtins.list(customer_ids)
        rows = np.array([-1 if c is None else self.cust_index_.get(str(c), -1) for c in given], dtype=np.int64)
        ptr = getattr(self, f"{list}_ptr_")
        start = ptr[np.maximum(rows, 0)]
        fast = (rows >= 0) & (ptr[np.maximum(rows, 0) + 1] - start >= k)
        # fast: the first k stored items of each list, in the order of customer_ids
        f_pos = np.flatnonzero(fast)
        at = (start[f_pos][:, None] + np.arange(k)[None, :]).ravel()
        code, arg = getattr(self, f"{list}_code_")[at], getattr(self, f"{list}_arg_")[at]
        pair = code.astype(np.int64) * (1 << 32) + (arg.astype(np.int64) + 1)
        uniq = unique_ints(pair)  # (by a sort: numpy's hash-based np.unique is slower on these)
        inv = np.searchsorted(uniq, pair)
        text = np.array([self._reason(int(u >> 32), int((u & 0xFFFFFFFF) - 1)) for u in uniq.tolist()], dtype=object)
        fast_ids = np.array([str(given[i]) for i in f_pos], dtype=object)
        cols: dict[str, builtins.list] = {
            "pos": [np.repeat(f_pos, k)], "customer_id": [np.repeat(fast_ids, k)],
            "rank": [np.tile(np.arange(1, k + 1), len(f_pos))],
            "product_id": [self.item_ids_[getattr(self, f"{list}_items_")[at]].astype(object)],
            "score": [getattr(self, f"{list}_scores_")[at].astype(np.float64)], "reason": [text[inv]]}
        for i in np.flatnonzero(~fast).tolist():
            recs = self.recommend(given[i], k, list=list)
            n = len(recs)
            cols["pos"].append(np.full(n, i))
            cols["customer_id"].append(np.full(n, str(given[i]), dtype=object))
            cols["rank"].append(np.arange(1, n + 1))
            cols["product_id"].append(np.array([r.product_id for r in recs], dtype=object))
            cols["score"].append(np.array([r.score for r in recs], dtype=np.float64))
            cols["reason"].append(np.array([r.reason for r in recs], dtype=object))
        out = {name: np.concatenate(parts) for name, parts in cols.items()}
        order = np.lexsort((out["rank"], out.pop("pos")))
        df = pd.DataFrame({name: out[name][order] for name in ("customer_id", "rank", "product_id", "score", "reason")})
        return df.astype({"customer_id": "string", "rank": "int64", "product_id": "string", "score": "float64",
                          "reason": "string"})
