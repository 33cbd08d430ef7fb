"""The OpenAPI document the service serves at ``/docs.json``: BentoML's, made consistent and valid.

BentoML 1.4 labels its document ``openapi: 3.0.2`` but fills it with pydantic 2 schemas, which are JSON
Schema 2020-12 (``{"type": "null"}`` in ``anyOf``, a numeric ``exclusiveMinimum``): invalid OpenAPI 3.0,
valid OpenAPI 3.1, whose schema dialect is exactly JSON Schema 2020-12. It also documents error bodies
the service does not send (BentoML's ``InvalidArgument`` / ``NotFound`` objects, FastAPI's 422) and none
of the errors it does send (401, 413, 503). :func:`service_document` fixes that: OpenAPI 3.1.0, every
error answer documented as :class:`serving.schemas.ErrorBody`, the API key as a security scheme, and
no schema that nothing refers to. :class:`OpenApiMiddleware` serves it in place of BentoML's.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
from collections.abc import Callable
from typing import Any

from serving.errors import error_code
from serving.schemas import ErrorBody

OPENAPI_VERSION = "3.1.0"
DOC_PATH = "/docs.json"
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
DESCRIPTIONS = {400: "Bad request: invalid body or parameters", 401: "Missing or invalid API key (X-API-Key)",
                404: "Not found", 413: "Request body too large (serving.max_body_bytes)",
                500: "Internal error (details in the server log)",
                503: "Not ready, or the online feature store is unavailable (the next request tries it again)"}
# BentoML's and FastAPI's own error schemas, replaced by ErrorBody
REPLACED_SCHEMAS = ("InvalidArgument", "NotFound", "InternalServerError", "HTTPValidationError", "ValidationError",
                    "TaskStatusResponse")
INFRA_PATHS = ("/healthz", "/livez", "/readyz", "/metrics")
NEEDS_FEATURES = ("/churn", "/next_purchase", "/segment", "/customers/{customer_id}")
MAY_BE_MISSING = ("/churn", "/next_purchase", "/segment", "/recommend", "/similar_items", "/bought_together",
                  "/at_risk", "/at_risk.csv", "/customers/{customer_id}", "/warnings")


def _version() -> str:
    try:
        return importlib.metadata.version("ecrm")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


def _error(status: int) -> dict:
    return {"description": DESCRIPTIONS.get(status, error_code(status)),
            "content": {"application/json": {"schema": dict(ERROR_REF)}}}


def _error_statuses(path: str, method: str, op: dict, open_paths: frozenset[str], auth: bool) -> list[int]:
    if path in INFRA_PATHS:
        return [503] if path == "/readyz" else []
    statuses = [500]
    if op.get("requestBody") or op.get("parameters"):
        statuses.append(400)
    if method == "post":
        statuses.append(413)
    if auth and path not in open_paths:
        statuses.append(401)
    if path in MAY_BE_MISSING:
        statuses.append(404)  # an unknown customer, no registered model, or no scoring run yet
    if path in NEEDS_FEATURES:
        statuses.append(503)
    return sorted(statuses)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _reachable(doc: dict) -> set[str]:
    """Component schemas referred to from the paths, directly or through other schemas."""
    schemas = doc["components"]["schemas"]
    todo, seen = list(_refs(doc["paths"])), set()
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo.extend(_refs(schemas[name]))
    return seen


def service_document(bentoml_doc: dict, open_paths: frozenset[str], auth: bool, description: str = "") -> dict:
    """The document to serve, made from BentoML's (which is not changed)."""
    doc = copy.deepcopy(bentoml_doc)
    doc["openapi"] = OPENAPI_VERSION
    doc["info"] = {"title": "ecrm", "version": _version(),
                   "description": description or "ecrm: churn, next purchase, segments and recommendations over HTTP."}
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in REPLACED_SCHEMAS:
        schemas.pop(name, None)
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorBody"] = error_schema
    if auth:
        doc["components"]["securitySchemes"] = {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            responses = {str(code): r for code, r in op.get("responses", {}).items() if int(code) < 400}
            responses.update({str(s): _error(s) for s in _error_statuses(path, method, op, open_paths, auth)})
            op["responses"] = responses
            if auth and path not in open_paths:
                op["security"] = [{"ApiKey": []}]
    csv = doc["paths"].get("/at_risk.csv", {}).get("get")
    if csv is not None:
        csv["responses"]["200"] = {"description": "The at-risk list as CSV, highest value at risk first",
                                   "content": {"text/csv": {"schema": {"type": "string"}}}}
    keep = _reachable(doc)
    doc["components"]["schemas"] = {k: v for k, v in schemas.items() if k in keep}
    return doc


class OpenApiMiddleware:
    """Answers ``GET /docs.json`` with :func:`service_document` (built on the first request, then kept)."""

    def __init__(self, app, document: Callable[[], dict]) -> None:
        self.app = app
        self._document = document
        self._body: bytes | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("path") != DOC_PATH or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if self._body is None:
            self._body = json.dumps(self._document()).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(self._body)).encode())]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else self._body})
