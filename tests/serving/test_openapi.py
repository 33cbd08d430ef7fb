"""The OpenAPI document the service serves: valid OpenAPI 3.1, every error documented as the body it gets."""

from __future__ import annotations

import asyncio
import json

import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_30, OPENAPI_31

from serving.auth import OPEN_PATHS
from serving.openapi import OpenApiMiddleware, service_document


@pytest.fixture(scope="module")
def bentoml_doc() -> dict:
    from serving.service import EcrmService  # BentoML's own document of the service (no server needed)

    return json.loads(json.dumps(EcrmService.openapi_spec.asdict()))


@pytest.fixture(scope="module")
def doc(bentoml_doc) -> dict:
    return json.loads(json.dumps(service_document(bentoml_doc, OPEN_PATHS, auth=True)))


def _schemas(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema":
                yield value
            else:
                yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_bentoml_labels_its_document_3_0_but_it_is_not_valid_3_0(bentoml_doc):
    """Why the document is rewritten: pydantic's JSON Schema 2020-12 inside an OpenAPI 3.0 label."""
    assert bentoml_doc["openapi"].startswith("3.0")
    assert not jsonschema_rs.validator_for(OPENAPI_30).is_valid(bentoml_doc)


def test_served_document_is_valid_openapi_3_1(doc):
    assert doc["openapi"] == "3.1.0"
    errors = [str(e) for e in jsonschema_rs.validator_for(OPENAPI_31).iter_errors(doc)]
    assert not errors, errors[:5]
    schemas = list(_schemas(doc["paths"])) + list(doc["components"]["schemas"].values())
    assert len(schemas) > 20
    assert all(jsonschema_rs.meta.is_valid(s) for s in schemas)  # each a valid JSON Schema 2020-12
    names = set(doc["components"]["schemas"])
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[-1] in names, ref


def test_every_error_answer_is_documented_as_the_error_body(doc):
    seen = set()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
                    seen.add((method.upper(), path, int(status)))
    assert ("POST", "/churn", 400) in seen and ("POST", "/churn", 401) in seen and ("POST", "/churn", 503) in seen
    assert ("GET", "/at_risk.csv", 400) in seen and ("GET", "/customers/{customer_id}", 404) in seen
    assert not any(status == 422 for _, _, status in seen)
    assert not any(path == "/healthz" for _, path, _ in seen)  # open infrastructure endpoints
    assert {"error", "detail"} <= set(doc["components"]["schemas"]["ErrorBody"]["required"])
    assert "InvalidArgument" not in doc["components"]["schemas"]  # BentoML's, not what the service sends
    csv = doc["paths"]["/at_risk.csv"]["get"]["responses"]["200"]["content"]
    assert list(csv) == ["text/csv"]


def test_api_key_is_a_security_scheme_of_the_protected_operations(bentoml_doc, doc):
    assert doc["components"]["securitySchemes"]["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert doc["paths"]["/churn"]["post"]["security"] == [{"ApiKey": []}]
    assert "security" not in doc["paths"]["/readyz"]["get"]
    open_doc = service_document(bentoml_doc, OPEN_PATHS, auth=False)
    assert "securitySchemes" not in open_doc["components"]
    assert "401" not in open_doc["paths"]["/churn"]["post"]["responses"]


def test_middleware_serves_the_document_and_passes_everything_else():
    built, sent, passed = [], [], []

    def document():
        built.append(1)
        return {"openapi": "3.1.0"}

    async def app(scope, receive, send):
        passed.append(scope["path"])

    async def send(message):
        sent.append(message)

    mw = OpenApiMiddleware(app, document=document)
    for path in ("/docs.json", "/docs.json", "/churn"):
        asyncio.run(mw({"type": "http", "method": "GET", "path": path}, None, send))
    assert passed == ["/churn"] and len(built) == 1  # built once
    assert sent[0]["status"] == 200 and json.loads(sent[1]["body"]) == {"openapi": "3.1.0"}
