"""Property-based fuzzing of the service's OpenAPI schema against the real server: no request may get a 5xx,
and every 4xx answer has the JSON error body ``{"error", "detail"}`` (400 for bad input, never 422).

Schemathesis reads ``/docs.json`` (OpenAPI 3.1) from the running server and generates requests for every operation,
both schema-conforming (positive) and schema-violating (negative) ones. A bad input may be refused with any
4xx; a 5xx is a server bug. The number of examples is bounded and generation is derandomized, so the run is
reproducible and takes a bounded time.

Every 5xx is collected (no shrinking, which would replay requests against a slow server) and reported
together at the end with the method, path, query, body and response text of each failing request.
"""

from __future__ import annotations

import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core import NotSet

from configs.settings import load_settings
from features.storage import Workspace
from serving.process import start_background, stop_background
from tests.e2e.shop import build_shop, free_port

pytestmark = pytest.mark.e2e

API_KEY = "fuzz-key"
MAX_EXAMPLES = 25  # per operation and generation mode
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
REQUEST_TIMEOUT = 30.0  # seconds; the service's own traffic timeout is 30 s


@pytest.fixture(scope="module")
def fuzz_shop(tmp_path_factory):
    """A workspace with data, a trained champion and batch scores, made through the CLI."""
    return build_shop(tmp_path_factory.mktemp("e2e-fuzz"))


def load_schema(url: str):
    """The server's OpenAPI document (OpenAPI 3.1, see serving/openapi.py) as a schemathesis schema, unchanged."""
    doc = httpx.get(f"{url}/docs.json", timeout=REQUEST_TIMEOUT).raise_for_status().json()
    assert doc["openapi"] == "3.1.0"
    return schemathesis.openapi.from_dict(doc)


def _error_body_problem(response) -> str | None:
    """Why a 4xx/5xx answer's body is not ``{"error": str, "detail": str, ...}``, or None when it is."""
    try:
        body = response.json()
    except ValueError:
        return "not JSON"
    if not (isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("detail"), str)):
        return "no error/detail strings"
    return None


def _describe(case, response) -> str:
    body = "<none>" if isinstance(case.body, NotSet) else case.body
    text = response.text if response is not None else ""
    return (f"{case.method.upper()} {case.formatted_path} query={case.query!r} headers={case.headers!r} "
            f"body={body!r} -> {getattr(response, 'status_code', '?')} {text[:500]!r}")


def _fuzz_operation(operation, mode: GenerationMode, base_url: str, failures: list[str], counts: dict) -> None:
    """Run up to MAX_EXAMPLES generated requests of one operation; append every 5xx to ``failures``."""

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        counts["requests"] += 1
        try:
            response = case.call(base_url=base_url, headers={"X-API-Key": API_KEY}, timeout=REQUEST_TIMEOUT)
        except Exception as exc:  # a dropped connection or a timeout is as bad as a 5xx
            failures.append(f"[{mode}] {_describe(case, None)} raised {type(exc).__name__}: {exc}")
            return
        counts[response.status_code // 100] = counts.get(response.status_code // 100, 0) + 1
        if response.status_code >= 500:
            failures.append(f"[{mode}] {_describe(case, response)}")
        elif response.status_code == 422:
            failures.append(f"[{mode}] 422 instead of 400: {_describe(case, response)}")
        elif response.status_code >= 400 and (problem := _error_body_problem(response)):
            failures.append(f"[{mode}] error body {problem}: {_describe(case, response)}")

    try:
        run()
    except Unsatisfiable:
        counts["unsatisfiable"].append(f"{operation.label} [{mode}]")  # e.g. no negative variant of a bodiless GET


def test_openapi_fuzz_gives_no_server_error(fuzz_shop, monkeypatch):
    cfg, _root = fuzz_shop
    monkeypatch.setenv("ECRM_CONFIG", str(cfg))
    monkeypatch.setenv("ECRM_API_KEYS", API_KEY)
    settings_ = load_settings(cfg)
    ws = Workspace(settings_.workspace)
    url, log = start_background(settings_, ws, port=free_port(), timeout=120)
    try:
        schema = load_schema(url)
        operations = [op.ok() for op in schema.get_all_operations()]  # .ok() raises on an unparsable operation
        labels = {op.label for op in operations}
        for expected in ("POST /churn", "POST /recommend", "GET /customers/{customer_id}", "GET /at_risk.csv"):
            assert expected in labels, sorted(labels)
        failures: list[str] = []
        counts: dict = {"requests": 0, "unsatisfiable": []}
        started = time.monotonic()
        for op in operations:
            for mode in MODES:
                _fuzz_operation(op, mode, url, failures, counts)
        elapsed = time.monotonic() - started
        print(f"\nfuzzed {len(operations)} operations, {counts['requests']} requests in {elapsed:.1f}s; "
              f"by status class: { {k: v for k, v in counts.items() if isinstance(k, int)} }; "
              f"no case for: {counts['unsatisfiable']}")
        assert counts["requests"] > len(operations)
        assert not failures, f"{len(failures)} requests failed (see {log}):\n" + "\n".join(failures)
    finally:
        assert stop_background(ws)
