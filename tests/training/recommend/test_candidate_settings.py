"""recommender.candidates: the number of candidates per source comes from the settings."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from configs.settings import RecommenderSettings, Settings
from training.recommend.candidates import CandidateBuilder, CandidateConfig, fit_cutoff_models
from training.recommend.data import Encoded, Snapshot
from training.recommend_pipeline import _config_hash, build_recommender, candidate_config

SMALL = {"own": 2, "together": 1, "similar": 1, "ease": 1, "popular": 1, "trending": 0, "season": 0, "category": 0}


def test_the_settings_reach_the_recommender():
    cfg = Settings.model_validate({"recommender": {"candidates": SMALL}}).recommender
    rec = build_recommender(cfg)
    assert rec.candidates == CandidateConfig(n_own=2, n_together=1, n_similar=1, n_ease=1, n_popular=1,
                                             n_trending=0, n_season=0, n_category=0)
    # the defaults are CandidateConfig's
    assert candidate_config(RecommenderSettings().candidates) == CandidateConfig()


def test_sources_that_every_list_needs_cannot_be_switched_off():
    with pytest.raises(ValidationError, match="recommender.candidates.own"):
        Settings.model_validate({"recommender": {"candidates": {"own": 0}}})


def test_only_other_candidate_numbers_change_the_model_hash():
    default = RecommenderSettings()
    keys = ["horizon_days", "training_cutoffs", "cutoff_step_days", "lookback_days", "list_size"]
    before = hashlib.sha256(json.dumps({k: getattr(default, k) for k in keys}, sort_keys=True).encode()).hexdigest()[:16]
    assert _config_hash(default) == before  # versions registered before the setting existed keep their hash
    fewer = RecommenderSettings.model_validate({"candidates": {"together": 20}})
    assert _config_hash(fewer) != before


def test_fewer_candidates_per_source_bound_each_customer_s_candidates():
    from features.synthetic import synthesize_shop

    shop = synthesize_shop(customers=120, products=40, seed=5, start="2022-01-01", end="2023-04-01")
    as_of = pd.Timestamp("2023-04-01", tz="UTC")
    enc = Encoded(shop["orders"], shop["products"], None, as_of)
    snap = Snapshot(enc, as_of, 90)
    rows = snap.active

    def built(cfg: CandidateConfig) -> pd.DataFrame:
        return CandidateBuilder(snap, fit_cutoff_models(snap, 10.0, cfg), cfg).build(rows)

    small = built(build_recommender(Settings.model_validate({"recommender": {"candidates": SMALL}}).recommender).candidates)
    per = small.groupby("cust").size()
    assert per.max() <= 2 + 1 + 1 + 1 + 1  # own + together + similar + EASE + popular
    # the two own items are there (the other sources may add more bought items, within their one each)
    bought = small.loc[small["bought"] == 1].groupby("cust").size().reindex(rows, fill_value=0).to_numpy()
    assert (bought >= np.minimum(2, snap.cust_items[rows])).all() and (bought <= 2 + 4).all()
    assert small.loc[small["bought"] == 0].groupby("cust").size().max() <= 4
    assert built(CandidateConfig()).groupby("cust").size().max() > per.max()
