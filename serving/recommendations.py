"""Recommendation answers of the service: the registered recommender's precomputed lists, filtered.

Unknown product ids in a request never fail it: they are ignored (they cannot be recommended) and
listed in ``unknown_product_ids``; unknown customers and unknown products get trending items.
Unknown categories are a client error (ValueError naming them).
"""

from __future__ import annotations

from collections.abc import Sequence

from training.recommend import Recommender


class RecommendationService:
    """Wraps one fitted :class:`Recommender` for the HTTP endpoints."""

    def __init__(self, model: Recommender, info: dict, max_k: int) -> None:
        self.model = model
        self.info = info
        self.max_k = max_k
        self.lists_as_of = model.as_of_.isoformat()

    def _check_k(self, k: int) -> int:
        if k > self.max_k:
            raise ValueError(f"k is {k}; the maximum per request is {self.max_k}")
        return k

    def _split(self, product_ids: Sequence[str]) -> tuple[list[str], list[str]]:
        """(known, unknown) product ids, each in request order without duplicates."""
        index = self.model.item_index_
        ids = list(dict.fromkeys(str(p) for p in product_ids))
        return [p for p in ids if p in index], [p for p in ids if p not in index]

    def _item(self, rank: int, product_id: str, score: float, reason: str) -> dict:
        m = self.model
        i = m.item_index_[product_id]
        c = int(m.item_cat_[i])
        return {"rank": rank, "product_id": product_id, "name": str(m.item_name_[i]),
                "category": str(m.cat_names_[c]) if c >= 0 else None, "score": round(float(score), 6), "reason": reason}

    def _trending(self, k: int, skip: Sequence[str] = ()) -> list[dict]:
        recs = self.model.recommend(None, k, exclude_product_ids=list(skip))
        return [self._item(r, p, s, why) for r, (p, s, why) in enumerate(recs, 1)]

    def recommend(self, customer_id: str | None, k: int = 10, list_name: str = "all", exclude_purchased: bool = False,
                  exclude_product_ids: Sequence[str] = (), categories: Sequence[str] | None = None,
                  context_product_ids: Sequence[str] = (), sold_within_days: float | None = None) -> dict:
        """``POST /recommend``: ranked items with score and reason for one customer."""
        k = self._check_k(k)
        exclude, unknown_ex = self._split(exclude_product_ids)
        context, unknown_ctx = self._split(context_product_ids)
        recs = self.model.recommend(customer_id, k, list=list_name, exclude_purchased=exclude_purchased,
                                    exclude_product_ids=exclude, categories=categories,
                                    context_product_ids=context, sold_within_days=sold_within_days)
        return {"customer_id": customer_id, "customer_known": recs.customer_known, "source": recs.source,
                "lists_as_of": self.lists_as_of, "unknown_product_ids": list(dict.fromkeys(unknown_ex + unknown_ctx)),
                "items": [self._item(r, p, s, why) for r, (p, s, why) in enumerate(recs, 1)]}

    def similar_items(self, product_id: str, k: int = 10) -> dict:
        """``POST /similar_items``: items bought by the same customers; trending for an unknown product."""
        k = self._check_k(k)
        known, unknown = self._split([product_id])
        pairs = self.model.similar_items(known[0], k) if known else []
        if pairs:
            items = [self._item(r, p, s, f"customers who bought {self._name(known[0])} also bought it")
                     for r, (p, s) in enumerate(pairs, 1)]
            return {"source": "similar_items", "unknown_product_ids": unknown, "items": items,
                    "lists_as_of": self.lists_as_of}
        return {"source": "trending", "unknown_product_ids": unknown, "items": self._trending(k, known),
                "lists_as_of": self.lists_as_of}

    def bought_together(self, product_ids: Sequence[str], k: int = 10) -> dict:
        """``POST /bought_together``: items in the same orders as these; trending when none is known."""
        k = self._check_k(k)
        known, unknown = self._split(product_ids)
        triples = self.model.bought_together(known, k) if known else []
        if triples:
            items = [self._item(r, p, s, why) for r, (p, s, why) in enumerate(triples, 1)]
            return {"source": "bought_together", "unknown_product_ids": unknown, "items": items,
                    "lists_as_of": self.lists_as_of}
        return {"source": "trending", "unknown_product_ids": unknown, "items": self._trending(k, known),
                "lists_as_of": self.lists_as_of}

    def _name(self, product_id: str) -> str:
        return str(self.model.item_name_[self.model.item_index_[product_id]])
