"""What a running service holds: the champion scorer and the feature store, loaded once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from configs.settings import Settings, load_settings
from features.storage import Workspace
from features.store import online_features, online_snapshot_info, open_store
from serving.batch import load_scorer
from serving.scoring import ChurnScorer


@dataclass
class ServiceState:
    """Loaded model(s), feature store and settings of one service process."""

    settings: Settings
    ws: Workspace
    scorer: ChurnScorer
    model_info: dict
    store: object

    @classmethod
    def load(cls, settings: Settings | None = None) -> "ServiceState":
        """Load the champion from the registry and open the online store (config from the environment)."""
        settings = settings or load_settings()
        ws = Workspace(settings.workspace)
        scorer, info = load_scorer(settings, ws)
        store = open_store(settings, ws)
        state = cls(settings, ws, scorer, info, store)
        state.smoke_check()
        return state

    def smoke_check(self) -> None:
        """Score one synthetic all-missing row: a model that cannot score must not serve."""
        import pandas as pd

        self.scorer.score_frame(["smoke"], pd.DataFrame([[float("nan")] * len(self.scorer.columns)], columns=self.scorer.columns))

    def churn(self, customer_ids: list[str]) -> list[dict]:
        """Score customers from the online store; unknown ids get status ``unknown_customer``."""
        online = online_features(self.store, customer_ids, self.scorer.refs)
        return self.scorer.score_online(online, customer_ids)

    def describe(self) -> dict:
        """Model versions and feature freshness, for ``GET /model_info``."""
        snap = online_snapshot_info(self.ws) or {}
        return {"models": {"churn": self.model_info}, "features": {
            "as_of": snap.get("as_of"), "materialized_at": snap.get("materialized_at"), "views": snap.get("views", []),
            "online_store": self.settings.feast.online_store.type}}
