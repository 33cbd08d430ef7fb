"""The service's recommendation answers on the tiny recommender shop (see tests/training/recommend)."""

from __future__ import annotations

import pytest

from serving.recommendations import RecommendationService
from tests.training.recommend.test_recommender import PRODUCTS, T, make_orders
from training.recommend import Recommender


@pytest.fixture(scope="module")
def service() -> RecommendationService:
    model = Recommender(use_ranker=False).fit(make_orders(), PRODUCTS, None, as_of=T)
    return RecommendationService(model, {"name": "ecrm-recommender", "version": 1}, max_k=5)


def test_known_customer_gets_personal_list_with_names_and_categories(service):
    out = service.recommend("A", k=2)
    assert out["customer_known"] and out["source"] == "personal" and out["unknown_product_ids"] == []
    first = out["items"][0]
    assert first == {"rank": 1, "product_id": "P1", "name": "Green tea", "category": "tea",
                     "score": first["score"], "reason": "bought before (3 times)"}
    assert out["lists_as_of"] == T.isoformat()


def test_unknown_products_are_ignored_and_reported(service):
    out = service.recommend("A", k=3, exclude_product_ids=["P1", "NEW1"], context_product_ids=["NEW2", "NEW1"])
    assert out["unknown_product_ids"] == ["NEW1", "NEW2"]
    assert "P1" not in [x["product_id"] for x in out["items"]] and len(out["items"]) == 3


def test_unknown_customer_with_basket_gets_bought_together(service):
    out = service.recommend("nobody", k=2, context_product_ids=["P3"])
    assert not out["customer_known"] and out["source"] == "bought_together"
    assert [x["product_id"] for x in out["items"]] == ["P4", "P1"]  # basket cosine 0.577, 0.5
    assert out["items"][0]["reason"] == "often bought with Espresso"
    assert service.recommend(None, k=3)["source"] == "trending"


def test_similar_and_bought_together_fall_back_to_trending_for_unknown_products(service):
    sim = service.similar_items("P3", k=2)
    assert sim["source"] == "similar_items" and {x["product_id"] for x in sim["items"]} == {"P1", "P4"}
    unknown = service.similar_items("NEW", k=2)
    assert unknown["source"] == "trending" and unknown["unknown_product_ids"] == ["NEW"]
    assert [x["product_id"] for x in unknown["items"]] == ["P4", "P3"]  # trending order
    both = service.bought_together(["P3", "NEW"], k=1)
    assert both["source"] == "bought_together" and both["unknown_product_ids"] == ["NEW"]
    assert [x["product_id"] for x in both["items"]] == ["P4"]


def test_limits_and_bad_filters_are_value_errors(service):
    with pytest.raises(ValueError, match="maximum per request is 5"):
        service.recommend("A", k=6)
    with pytest.raises(ValueError, match="unknown categories: shoes"):
        service.recommend("A", k=2, categories=["shoes"])
