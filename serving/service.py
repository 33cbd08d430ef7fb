"""The ecrm HTTP service (BentoML).

Models load once, in ``__init__`` when the server starts (never at import, never on a first request).
BentoML itself serves ``GET /healthz``, ``/livez`` and ``/readyz`` (ready once ``__init__`` finished)
and the OpenAPI document at ``/docs.json`` with interactive docs at ``/``.

Endpoints of ours:
* ``POST /churn``  {"customer_ids": [...]} -> per-id churn probability, risk band and top drivers
* ``GET /model_info`` -> registered model versions and feature freshness
"""

from __future__ import annotations

import bentoml
from bentoml.exceptions import InvalidArgument
from fastapi import FastAPI

from serving.schemas import ChurnRequest, ChurnResponse, ModelInfo
from serving.state import ServiceState

http = FastAPI(title="ecrm")


@bentoml.service(name="ecrm", workers=1, traffic={"timeout": 30})
@bentoml.asgi_app(http, path="/")
class EcrmService:
    """Churn scores over HTTP, from the registered champion and the Feast online store."""

    def __init__(self) -> None:
        self.state = ServiceState.load()

    @bentoml.api(route="/churn")
    def churn(self, req: ChurnRequest, /) -> ChurnResponse:
        """Churn probability, risk band and top drivers for each requested customer id."""
        limit = self.state.settings.serving.max_ids_per_request
        if len(req.customer_ids) > limit:
            raise InvalidArgument(f"customer_ids has {len(req.customer_ids)} ids; the maximum per request is {limit}")
        info = self.state.model_info
        snap = self.state.describe()["features"]["as_of"]
        return ChurnResponse(
            model=ModelInfo(name=info["name"], version=info["version"], alias=info["alias"]),
            features_as_of=snap,
            results=self.state.churn(req.customer_ids),
        )

    @http.get("/model_info")
    def model_info(self) -> dict:
        """Which model versions serve, and how fresh the online features are."""
        return self.state.describe()
