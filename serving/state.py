"""What a running service holds: the champion models and the feature store, loaded once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from configs.settings import Settings, load_settings
from features.storage import Workspace
from features.store import OnlineReader, online_snapshot_info, open_store
from serving.batch import SEGMENT_COLUMNS, load_next_purchase_scorer, load_recommender, load_scorer, load_segment_model
from serving.at_risk import AtRiskList
from serving.recommendations import RecommendationService
from serving.scoring import ChurnScorer, NextPurchaseScorer
from training.registry import (CHAMPION, CHURN_MODEL, NEXT_PURCHASE_MODEL, RECOMMENDER_MODEL, SEGMENT_MODEL, configure,
                               get_alias)

MODEL_NAMES = {"churn": CHURN_MODEL, "next_purchase": NEXT_PURCHASE_MODEL, "segments": SEGMENT_MODEL,
               "recommender": RECOMMENDER_MODEL}


@dataclass
class ServiceState:
    """Loaded model(s), feature store and settings of one service process."""

    settings: Settings
    ws: Workspace
    scorer: ChurnScorer
    model_info: dict
    store: object
    next_purchase: NextPurchaseScorer | None = None
    segments: object | None = None
    segment_refs: list[str] = field(default_factory=list)
    infos: dict[str, dict] = field(default_factory=dict)
    reader: OnlineReader | None = None
    recommender: RecommendationService | None = None
    at_risk: AtRiskList | None = None
    churn_positions: np.ndarray | None = None  # the churn model's columns within the reader's row
    _snapshot: tuple[float, dict] = (-1.0, {})

    @classmethod
    def load(cls, settings: Settings | None = None) -> "ServiceState":
        """Load the champions from the registry and open the online store (config from the environment).

        The churn champion is required; next-purchase and segment champions are served when registered.
        """
        settings = settings or load_settings()
        ws = Workspace(settings.workspace)
        scorer, info = load_scorer(settings, ws)
        store = open_store(settings, ws)
        state = cls(settings, ws, scorer, info, store, infos={"churn": info})
        if (np_scorer := load_next_purchase_scorer(settings, ws)) is not None:
            state.next_purchase, state.infos["next_purchase"] = np_scorer
        if (seg := load_segment_model(settings, ws)) is not None:
            state.segments, state.segment_refs, state.infos["segments"] = seg
        if (rec := load_recommender(settings, ws)) is not None:
            state.recommender = RecommendationService(rec[0], rec[1], settings.recommender.max_k)
            state.infos["recommender"] = rec[1]
        state.at_risk = AtRiskList(ws)
        state.reader = OnlineReader(store, state.refs)
        state.churn_positions = np.array([state.reader.columns.index(c) for c in scorer.columns])
        state.smoke_check()
        return state

    @property
    def refs(self) -> list[str]:
        """Every feature reference any loaded model needs (one online lookup serves them all)."""
        extra = (self.next_purchase.refs if self.next_purchase else []) + self.segment_refs
        return list(dict.fromkeys([*self.scorer.refs, *extra]))

    def smoke_check(self) -> None:
        """Score one all-missing row with every model: a model that cannot score must not serve."""
        cols = [r.replace(":", "__") for r in self.refs]
        frame = pd.DataFrame([[float("nan")] * len(cols)], columns=cols)
        self._score(["smoke"], frame, np.ones(1, dtype=bool))
        if self.recommender is not None:
            self.recommender.recommend("smoke", 10)

    def _lookup(self, customer_ids: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
        values, known = self.reader.read(customer_ids)
        return pd.DataFrame(values, columns=self.reader.columns), known

    def _score(self, ids: list[str], frame: pd.DataFrame, known: np.ndarray) -> dict[str, list[dict]]:
        churn = self.scorer.score_frame(ids, frame, known)
        out = {"churn": churn}
        if self.next_purchase is not None:
            as_of = pd.Timestamp(self.snapshot().get("as_of") or pd.Timestamp.now(tz="UTC"))
            p_h = [None if r["churn_probability"] is None else 1.0 - r["churn_probability"] for r in churn]
            out["next_purchase"] = self.next_purchase.score_frame(ids, frame, as_of, p_h, known)
        if self.segments is not None:
            rows = [{"customer_id": str(c), "status": "unknown_customer"} for c in ids]
            idx = np.flatnonzero(known)
            if len(idx):
                X = frame.iloc[idx][[r.replace(":", "__") for r in self.segment_refs]].reset_index(drop=True)
                value = None
                if "next_purchase" in out:
                    value = np.array([out["next_purchase"][i]["clv_12m"] for i in idx], dtype=float)
                seg = self.segments.transform(X, value)
                for row, i in enumerate(idx):
                    rec = seg.iloc[row]
                    rows[i] = {"customer_id": str(ids[i]), "status": "ok",
                               **{c: (int(rec[c]) if c.endswith("_score") or c == "cluster" else str(rec[c]))
                                  for c in SEGMENT_COLUMNS[1:]}}
            out["segments"] = rows
        return out

    def score(self, customer_ids: list[str]) -> dict[str, list[dict]]:
        """Every loaded model's answer for these customers, from one online-store lookup."""
        frame, known = self._lookup(customer_ids)
        return self._score(customer_ids, frame, known)

    def churn(self, customer_ids: list[str]) -> list[dict]:
        """Churn scores from the online store; unknown ids get status ``unknown_customer``."""
        values, known = self.reader.read(customer_ids)  # numpy only: the hot path of the service
        return self.scorer.score_array(customer_ids, values[:, self.churn_positions], known)

    def snapshot(self) -> dict:
        """What the online store holds (as of, views, when materialized); re-read only when the record changes."""
        path = self.ws.feast_dir / "online_snapshot.json"
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if mtime != self._snapshot[0]:
            self._snapshot = (mtime, online_snapshot_info(self.ws) or {})
        return self._snapshot[1]

    def customer(self, customer_id: str, k: int = 5) -> dict | None:
        """Everything about one customer (churn with drivers, next purchase and value, segments, top
        recommendations), or None when the online store does not know the id."""
        scores = self.score([customer_id])
        churn = scores["churn"][0]
        if churn["status"] != "ok":
            return None
        out: dict = {"customer_id": customer_id, "features_as_of": self.snapshot().get("as_of"),
                     "churn": {key: churn[key] for key in ("churn_probability", "risk_band", "top_drivers")}}
        for key in ("next_purchase", "segments"):
            if key in scores:
                out[key] = {f: v for f, v in scores[key][0].items() if f not in ("customer_id", "status")}
        if self.recommender is not None:
            rec = self.recommender.recommend(customer_id, k)
            out["recommendations"] = rec["items"]
        out["models"] = {name: info["version"] for name, info in self.infos.items()}
        return out

    def versions(self) -> dict[str, int]:
        """The version of each model this state serves."""
        return {key: int(info["version"]) for key, info in self.infos.items()}

    @staticmethod
    def champion_versions(settings: Settings, ws: Workspace) -> dict[str, int]:
        """The registry's current ``champion`` version of each model (what a fresh load would serve)."""
        client = configure(settings, ws)
        out = {}
        for key, name in MODEL_NAMES.items():
            ref = get_alias(client, name, CHAMPION)
            if ref is not None:
                out[key] = ref.version
        return out

    def describe(self) -> dict:
        """Model versions and feature freshness, for ``GET /model_info``."""
        snap = self.snapshot()
        return {"models": self.infos, "features": {
            "as_of": snap.get("as_of"), "materialized_at": snap.get("materialized_at"), "views": snap.get("views", []),
            "online_store": self.settings.feast.online_store.type}}
