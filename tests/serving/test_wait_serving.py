"""``wait_serving``: wait until a server's ``/model_info`` shows given model versions (the demo waits for
the recommender its server hot-reloads)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from serving.process import wait_serving


@pytest.fixture
def model_info_server():
    """A local HTTP server whose ``/model_info`` answers ``served["models"]`` (versions as in the service)."""
    served: dict = {"models": {"churn": {"version": 1}}, "calls": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            served["calls"] += 1
            if served["calls"] == 2:  # a worker busy reloading: not an answer to wait on
                self.send_response(503)
                self.end_headers()
                return
            body = json.dumps({"models": served["models"]}).encode()
            self.send_response(200 if self.path == "/model_info" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()
    server.server_close()


def test_returns_once_the_versions_are_served(model_info_server):
    url, served = model_info_server
    timer = threading.Timer(0.8, lambda: served["models"].update({"recommender": {"version": 2}}))
    timer.start()
    wait_serving(url, {"churn": 1, "recommender": 2}, timeout=10)
    assert served["calls"] >= 3  # asked again after the 503 and before the recommender appeared


def test_times_out_naming_what_is_served(model_info_server):
    url, _ = model_info_server
    with pytest.raises(RuntimeError, match=r"did not serve \{'churn': 2\} after 1s \(serving \{'churn': 1\}\)"):
        wait_serving(url, {"churn": 2}, timeout=1)
