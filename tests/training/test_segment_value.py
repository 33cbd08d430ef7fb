"""The segments' 12-month value: the next-purchase champion trained as of the same date on the same data is
used as anchored in training (no second refit on the customer base); otherwise it is refitted first."""

from __future__ import annotations

import json

import numpy as np

from configs.settings import Settings
from features.pipeline import CUSTOMER_VIEWS, customer_views, prepare_features
from features.storage import Workspace
from features.store import feature_refs
from features.synthetic_stage import synthesize_into
from training.customer_inputs import CustomerInputs
from training.next_purchase_model import NextPurchaseModel
from training.next_purchase_pipeline import train_next_purchase
from training.registry import NEXT_PURCHASE_MODEL, configure, load_model
from training.segment_pipeline import predicted_value


def test_value_of_an_anchored_champion_equals_a_refitted_one(tmp_path, monkeypatch):
    settings = Settings.model_validate({
        "workspace": str(tmp_path / "ws"),
        "synthetic": {"customers": 300, "products": 30, "seed": 8, "start": "2022-01-01", "end": "2023-06-01"},
        "churn": {"training_cutoffs": 4},
        "next_purchase": {"lightgbm": {"n_estimators": 30}},
    })
    ws = Workspace(settings.workspace)
    synthesize_into(settings, ws)
    inputs = CustomerInputs(ws)
    assert train_next_purchase(settings, ws, inputs=inputs).alias == "champion"
    store, views = prepare_features(settings, ws, [inputs.as_of], views=CUSTOMER_VIEWS)
    X, population = inputs.score_date_features(store, feature_refs(customer_views(views)),
                                               settings.churn.eligibility_days)
    refits: list[int] = []
    original = NextPurchaseModel.fit_population
    monkeypatch.setattr(NextPurchaseModel, "fit_population",
                        lambda self, *a, **kw: (refits.append(1), original(self, *a, **kw))[1])

    value, note = predicted_value(settings, ws, population, X, inputs.as_of)
    assert refits == [] and note.startswith(f"value = clv_12m of {NEXT_PURCHASE_MODEL} v1")
    model, ref = load_model(configure(settings, ws), NEXT_PURCHASE_MODEL, "champion")
    cols = [r.replace(":", "__") for r in json.loads(ref.tags["feature_refs"])]
    model.fit_population(population, X[cols])  # what the refit would give
    assert refits == [1]
    np.testing.assert_allclose(value, model.predict_frame(X[cols])["clv_12m"].to_numpy(), rtol=1e-12)
    assert len(value) == len(X) and np.isfinite(value).all()

    earlier = inputs.as_of - np.timedelta64(1, "D")  # another date: refitted on the customer base given
    predicted_value(settings, ws, population, X, earlier)
    assert len(refits) == 2
    other = settings.model_copy(update={"churn": settings.churn.model_copy(update={"eligibility_days": 300})})
    predicted_value(other, ws, population, X, inputs.as_of)  # other eligible customers: refitted too
    assert len(refits) == 3
