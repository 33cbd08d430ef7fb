"""The ecrm HTTP service (BentoML).

Models load once, in ``__init__`` when the server starts (never at import, never on a first request).
BentoML itself serves ``GET /healthz``, ``/livez`` and ``/readyz`` (ready once ``__init__`` finished)
and the OpenAPI document at ``/docs.json`` with interactive docs at ``/``.

The endpoints are ``async``: each request is a few milliseconds of CPU work, which runs on the event
loop directly (a sync endpoint's hand-off to a worker thread doubled the median latency of /churn).

Endpoints of ours:
* ``POST /churn``  {"customer_ids": [...]} -> per-id churn probability, risk band and top drivers
* ``POST /next_purchase`` {"customer_ids": [...]} -> per-id purchase probabilities, expected orders, spend, value
* ``POST /segment`` {"customer_ids": [...]} -> per-id RFM scores and segment, lifecycle stage, value tier
* ``POST /recommend`` {"customer_id", "k", "list", filters...} -> ranked products with score and reason
* ``POST /similar_items`` {"product_id", "k"} and ``POST /bought_together`` {"product_ids", "k"}
* ``GET /model_info`` -> registered model versions and feature freshness
"""

from __future__ import annotations

import gc

import bentoml
from bentoml.exceptions import InvalidArgument, NotFound
from fastapi import FastAPI

from typing import TYPE_CHECKING

from serving.schemas import (BoughtTogetherRequest, ChurnResponse, CustomerIdsRequest, ItemsResponse, ModelInfo,
                             NextPurchaseResponse, RecommendRequest, RecommendResponse, SegmentResponse,
                             SimilarItemsRequest)

if TYPE_CHECKING:  # the state module pulls in Feast, MLflow and LightGBM: imported by the worker only
    from serving.state import ServiceState

http = FastAPI(title="ecrm")


@bentoml.service(name="ecrm", workers=1, traffic={"timeout": 30})
@bentoml.asgi_app(http, path="/")
class EcrmService:
    """Churn scores over HTTP, from the registered champion and the Feast online store."""

    def __init__(self) -> None:
        from serving.state import ServiceState  # here, not at import: BentoML's supervisor imports this module too

        self.state: ServiceState = ServiceState.load()
        # the loaded models and stores live as long as the process: keep them out of the garbage
        # collector's full passes, which otherwise walk them all and show up as latency spikes
        gc.collect()
        gc.freeze()

    def _check(self, req: CustomerIdsRequest) -> None:
        limit = self.state.settings.serving.max_ids_per_request
        if len(req.customer_ids) > limit:
            raise InvalidArgument(f"customer_ids has {len(req.customer_ids)} ids; the maximum per request is {limit}")

    def _model(self, key: str) -> ModelInfo:
        info = self.state.infos.get(key)
        if info is None:
            raise NotFound(f"no {key.replace('_', '-')} model is registered as champion: run `ecrm train`")
        return ModelInfo(name=info["name"], version=info["version"], alias=info["alias"])

    @bentoml.api(route="/churn")
    async def churn(self, req: CustomerIdsRequest, /) -> ChurnResponse:
        """Churn probability, risk band and top drivers for each requested customer id."""
        self._check(req)
        return ChurnResponse(model=self._model("churn"), features_as_of=self.state.snapshot().get("as_of"),
                             results=self.state.churn(req.customer_ids))

    @bentoml.api(route="/next_purchase")
    async def next_purchase(self, req: CustomerIdsRequest, /) -> NextPurchaseResponse:
        """P(order in 30 days / in the horizon), expected orders and spend, next-order date, 12-month value."""
        self._check(req)
        model = self._model("next_purchase")
        return NextPurchaseResponse(model=model, features_as_of=self.state.snapshot().get("as_of"),
                                    results=self.state.score(req.customer_ids)["next_purchase"])

    @bentoml.api(route="/segment")
    async def segment(self, req: CustomerIdsRequest, /) -> SegmentResponse:
        """RFM scores and segment, lifecycle stage, value tier, ABC class and cluster per customer."""
        self._check(req)
        model = self._model("segments")
        return SegmentResponse(model=model, features_as_of=self.state.snapshot().get("as_of"),
                               results=self.state.score(req.customer_ids)["segments"])

    def _recommender(self):
        rec = self.state.recommender
        if rec is None:
            raise NotFound("no ecrm-recommender model is registered as champion: run `ecrm train` "
                           "(the orders need product ids)")
        return rec

    @bentoml.api(route="/recommend")
    async def recommend(self, req: RecommendRequest, /) -> RecommendResponse:
        """Top-k products for one customer (or a visitor with context products), each with score and reason."""
        rec = self._recommender()
        try:
            out = rec.recommend(req.customer_id, req.k, req.list_name, req.exclude_purchased, req.exclude_product_ids,
                                req.categories, req.context_product_ids, req.sold_within_days)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        return RecommendResponse(model=self._model("recommender"), **out)

    @bentoml.api(route="/similar_items")
    async def similar_items(self, req: SimilarItemsRequest, /) -> ItemsResponse:
        """Products bought by the customers who bought this one (trending for an unknown product)."""
        rec = self._recommender()
        try:
            out = rec.similar_items(req.product_id, req.k)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        return ItemsResponse(model=self._model("recommender"), **out)

    @bentoml.api(route="/bought_together")
    async def bought_together(self, req: BoughtTogetherRequest, /) -> ItemsResponse:
        """Products most often in the same orders as these (trending when none is known)."""
        rec = self._recommender()
        try:
            out = rec.bought_together(req.product_ids, req.k)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        return ItemsResponse(model=self._model("recommender"), **out)

    @http.get("/model_info")
    def model_info(self) -> dict:
        """Which model versions serve, and how fresh the online features are."""
        return self.state.describe()
