"""The ecrm HTTP service (BentoML).

The server runs ``serving.workers`` worker processes (BentoML's; they share the port, and one answer in
``serving.keepalive_requests`` asks its client to reconnect so connections spread, :mod:`serving.connections`). Each loads the
models once, in ``__init__`` when it starts (never at import, never on a first request), and follows
the registry's champions on its own (:mod:`serving.reload`). BentoML itself serves ``GET /healthz``,
``/livez`` and ``/readyz`` (ready once ``__init__`` finished); ``/docs.json`` is our OpenAPI 3.1
document (:mod:`serving.openapi`) with interactive docs at ``/``. Every error answer has the JSON body
``{"error", "detail"}`` (:mod:`serving.errors`).

The endpoints are ``async``: each request is a few milliseconds of CPU work, which runs on the event
loop directly (a sync endpoint's hand-off to a worker thread doubled the median latency of /churn).
Concurrent ``/churn`` requests are scored in one call (:mod:`serving.microbatch`).

Endpoints of ours:
* ``POST /churn``  {"customer_ids": [...]} -> per-id churn probability, risk band and top drivers
* ``POST /next_purchase`` {"customer_ids": [...]} -> per-id purchase probabilities, expected orders, spend, value
* ``POST /segment`` {"customer_ids": [...]} -> per-id RFM scores and segment, lifecycle stage, value tier
* ``POST /recommend`` {"customer_id", "k", "list", filters...} -> ranked products with score and reason
* ``POST /similar_items`` {"product_id", "k"} and ``POST /bought_together`` {"product_ids", "k"}
* ``GET /customers/{id}`` -> customer 360: churn with drivers, next purchase, segments, recommendations
* ``POST /at_risk`` {filters, page} and ``GET /at_risk.csv`` -> the retention team's at-risk list
* ``GET /warnings`` -> CRM warning indicators of the last scoring run
* ``GET /model_info`` -> registered model versions and feature freshness
"""

from __future__ import annotations

import gc
import json
import os

import bentoml
from bentoml.exceptions import InvalidArgument, NotFound
from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from typing import TYPE_CHECKING

from features.errors import OnlineStoreUnavailable
from serving.auth import OPEN_PATHS, ApiKeyMiddleware, auth_enabled
from serving.connections import KeepAliveLimitMiddleware
from serving.errors import ErrorBodyMiddleware, validation_message
from serving.limits import BodyLimitMiddleware
from serving.microbatch import MicroBatcher
from serving.openapi import OpenApiMiddleware, service_document
from serving.schemas import (AtRiskRequest, BoughtTogetherRequest, ChurnResponse, CustomerIdsRequest, ItemsResponse, ModelInfo,
                             NextPurchaseResponse, RecommendRequest, RecommendResponse, SegmentResponse,
                             SimilarItemsRequest)

if TYPE_CHECKING:  # the state module pulls in Feast, MLflow and LightGBM: imported by the worker only
    from serving.state import ServiceState

http = FastAPI(title="ecrm")
BATCH_MAX_IDS = 64  # ids scored in one call at most when concurrent /churn requests are batched


@http.exception_handler(RequestValidationError)
async def _invalid_parameters(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """Bad query or path parameters: 400 like a bad body (FastAPI's default is 422)."""
    fields = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in exc.errors()]
    return JSONResponse({"error": "invalid_request", "detail": validation_message(fields), "errors": fields},
                        status_code=400)


def _unavailable(exc: Exception) -> JSONResponse:
    """503 with the reason (BentoML's own 5xx answers hide it); the next request tries the store again."""
    return JSONResponse({"error": "online_store_unavailable", "detail": str(exc)}, status_code=503)


def _refreeze() -> None:
    """The loaded models and stores live until the next reload: keep them out of the garbage collector's
    full passes, which otherwise walk them all and show up as latency spikes."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _workers() -> int:
    """``serving.workers`` of the config the server was started with (read when BentoML imports this module),
    or ``ECRM_SERVER_WORKERS`` when the process that started the server set it (``ecrm demo``: 1)."""
    from configs.settings import load_settings

    override = os.environ.get("ECRM_SERVER_WORKERS")
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ValueError(f"ECRM_SERVER_WORKERS must be a positive whole number, got {override!r}")
        return int(override)
    return load_settings().serving.workers


def _reload_seconds(configured: float) -> float:
    """How often the worker looks for new champions: ``serving.reload_seconds`` (``configured``), or
    ``ECRM_SERVER_RELOAD_SECONDS`` when the process that started the server set it (``ecrm demo``: 1 s,
    so the recommender still training when the server starts is served as soon as it is registered)."""
    override = os.environ.get("ECRM_SERVER_RELOAD_SECONDS")
    if override is None:
        return configured
    try:
        seconds = float(override)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also NaN
        raise ValueError(f"ECRM_SERVER_RELOAD_SECONDS must be a number of seconds >= 0, got {override!r}")
    return seconds


def _observability() -> dict:
    """BentoML's ``tracing`` and ``logging`` configuration from ``serving.request_tracing`` and
    ``serving.access_log``.

    Both cost CPU on every request (together about a quarter of a worker's under load). Tracing off (the
    default) excludes every URL from OpenTelemetry, so no span is made: BentoML always installs the
    middleware, and without an exporter configured the spans went nowhere; on, BentoML's own tracing
    configuration (``BENTOML_CONFIG``) applies. The access log (one line per request with the client's
    address) is off by default: the Prometheus metrics count requests, latencies and errors."""
    from configs.settings import load_settings

    serving = load_settings().serving
    return {"tracing": {} if serving.request_tracing else {"excluded_urls": [".*"]},
            "logging": {"access": {"enabled": serving.access_log}}}


@bentoml.service(name="ecrm", workers=_workers(), traffic={"timeout": 30}, **_observability())
@bentoml.asgi_app(http, path="/")
class EcrmService:
    """Churn scores over HTTP, from the registered champion and the Feast online store."""

    def __init__(self) -> None:
        from serving.state import ServiceState  # here, not at import: BentoML's supervisor imports this module too

        from serving.reload import ChampionWatch, Reloader
        from serving.service_metrics import ServiceMetrics
        from training.registry import local_registry_fingerprint, tracking_uri

        state = ServiceState.load()
        settings, ws = state.settings, state.ws
        metrics = ServiceMetrics()
        uri = tracking_uri(settings, ws)
        champions = ChampionWatch(lambda: ServiceState.champion_versions(settings, ws),
                                  lambda: local_registry_fingerprint(uri))
        self._reloader = Reloader(state, lambda: ServiceState.load(settings), champions,
                                  lambda s: s.versions(), after_swap=_refreeze,
                                  after_check=lambda r: metrics.update(r.state, r.refused))
        metrics.update(state, None)
        # concurrent one-customer requests share one scoring call (the state is looked up at each call)
        self._churn = MicroBatcher(lambda ids: self.state.churn(ids), max_ids=BATCH_MAX_IDS)
        if (every := _reload_seconds(settings.serving.reload_seconds)) > 0:
            self._reloader.start(every)
        _refreeze()

    @property
    def state(self) -> "ServiceState":
        """The state serving now (replaced whole by the hot reload)."""
        return self._reloader.state

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
        try:
            results = await self._churn(req.customer_ids)
        except OnlineStoreUnavailable as exc:
            return _unavailable(exc)
        return ChurnResponse(model=self._model("churn"), features_as_of=self.state.snapshot().get("as_of"),
                             results=results)

    @bentoml.api(route="/next_purchase")
    async def next_purchase(self, req: CustomerIdsRequest, /) -> NextPurchaseResponse:
        """P(order in 30 days / in the horizon), expected orders and spend, next-order date, 12-month value."""
        self._check(req)
        model = self._model("next_purchase")
        try:
            results = self.state.score(req.customer_ids)["next_purchase"]
        except OnlineStoreUnavailable as exc:
            return _unavailable(exc)
        return NextPurchaseResponse(model=model, features_as_of=self.state.snapshot().get("as_of"), results=results)

    @bentoml.api(route="/segment")
    async def segment(self, req: CustomerIdsRequest, /) -> SegmentResponse:
        """RFM scores and segment, lifecycle stage, value tier, ABC class and cluster per customer."""
        self._check(req)
        model = self._model("segments")
        try:
            results = self.state.score(req.customer_ids)["segments"]
        except OnlineStoreUnavailable as exc:
            return _unavailable(exc)
        return SegmentResponse(model=model, features_as_of=self.state.snapshot().get("as_of"), results=results)

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

    @http.get("/customers/{customer_id}")
    async def customer(self, customer_id: str):
        """Customer 360: churn with drivers, next purchase and 12-month value, RFM segment, lifecycle stage,
        value tier and the top 5 recommendations; 404 for an id the online store does not know."""
        try:
            out = self.state.customer(customer_id)
        except OnlineStoreUnavailable as exc:
            return _unavailable(exc)
        if out is None:
            return JSONResponse({"error": "unknown_customer",
                                 "detail": f"customer {customer_id!r} is not in the online store "
                                           f"(features as of {self.state.snapshot().get('as_of')})"}, status_code=404)
        return out

    @bentoml.api(route="/at_risk")
    async def at_risk(self, req: AtRiskRequest, /) -> dict:
        """Customers at or above a churn probability, by value at risk, filtered and paginated."""
        filters = {k: getattr(req, k) for k in ("segments", "value_tiers", "lifecycle_stages", "countries")}
        try:
            return self.state.at_risk.page(req.page, req.page_size, req.min_probability, **filters)
        except LookupError as exc:
            raise NotFound(str(exc)) from exc
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc

    @http.get("/at_risk.csv")
    async def at_risk_csv(self, min_probability: float = Query(0.5, ge=0, le=1), segment: list[str] | None = Query(None),
                          value_tier: list[str] | None = Query(None), lifecycle_stage: list[str] | None = Query(None),
                          country: list[str] | None = Query(None)):
        """The whole filtered at-risk list as CSV (repeat a filter parameter for several values)."""
        try:
            rows = self.state.at_risk.select(min_probability, segments=segment, value_tiers=value_tier,
                                             lifecycle_stages=lifecycle_stage, countries=country)
        except LookupError as exc:
            return JSONResponse({"error": "not_found", "detail": str(exc)}, status_code=404)
        except ValueError as exc:
            return JSONResponse({"error": "bad_request", "detail": str(exc)}, status_code=400)
        from serving.at_risk import at_risk_csv  # the worker has the module loaded already (its state's list)

        return Response(at_risk_csv(rows), media_type="text/csv",
                        headers={"content-disposition": 'attachment; filename="at_risk.csv"'})

    @http.get("/warnings")
    async def warnings(self):
        """The CRM warning indicators of the scoring run the online store holds (see ``ecrm score``)."""
        from serving.batch import warnings_path  # the worker has the batch module loaded already

        path = warnings_path(self.state.ws)
        if not path.is_file():
            return JSONResponse({"error": "no_warnings", "detail": "no scoring run has been recorded: run `ecrm score`"},
                                status_code=404)
        return json.loads(path.read_text())

    @http.get("/model_info")
    def model_info(self) -> dict:
        """Which model versions serve, how fresh the online features are, any refused new champion, and which
        worker process answered (each worker loads and reloads the models on its own)."""
        return {**self.state.describe(), "refused": self._reloader.refused, "worker_pid": os.getpid()}


def _document() -> dict:
    """The OpenAPI document of ``/docs.json`` (see :mod:`serving.openapi`)."""
    from configs.settings import load_settings

    return service_document(EcrmService.openapi_spec.asdict(), OPEN_PATHS, auth_enabled(load_settings()),
                            __doc__.split("\n\n")[0])


# the first added is the outermost: every answer from further in gets a JSON error body
EcrmService.add_asgi_middleware(KeepAliveLimitMiddleware)
EcrmService.add_asgi_middleware(OpenApiMiddleware, document=_document)
EcrmService.add_asgi_middleware(ErrorBodyMiddleware)
EcrmService.add_asgi_middleware(BodyLimitMiddleware)
EcrmService.add_asgi_middleware(ApiKeyMiddleware)
