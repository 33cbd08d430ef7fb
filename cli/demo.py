"""``ecrm demo``: the whole service on the embedded synthetic shop, ending with a running server.

On a 2-core laptop most of the pipeline runs on one core (Python, BG/NBD fits, MLflow logging), so work
overlaps: a second process synthesizes the shop while this one imports the training stack, then trains
the recommender while the customer models train and the score date's features are loaded into the
online store. The server starts (imports, model loading) as soon as the customer models are registered,
while the recommender still trains; it looks for new champions every second, so it serves the
recommender once registered (the hot reload of ``ecrm serve``), while the batch scores are written.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import typer

from configs.settings import ComputeSettings, Settings
from features.storage import Workspace
from training.registry import tracking_uri

StageFactory = Callable[[str], AbstractContextManager[Callable[[str], None]]]
DEMO_RELOAD_SECONDS = 1.0  # the demo server's look for new champions (serving.reload_seconds: 30 s)


def _child_progress(message: str) -> None:
    print(f"  [recommender] {message}", file=sys.stderr, flush=True)


def _synthesize_in_child(settings: Settings, ws_root: str, customers: int | None) -> str:
    """Runs in the second process while the first imports the training and scoring stack (about 16 s
    of imports on one core, the synthesis on the other); returns the last progress message."""
    from features.synthetic_stage import synthesize_into

    last: list[str] = []

    def say(message: str) -> None:
        last[:] = [message]
        print(f"  [synthetic shop] {message}", file=sys.stderr, flush=True)

    synthesize_into(settings, Workspace(Path(ws_root)), customers=customers, progress=say)
    return last[0] if last else "done"


def _train_recommender_in_child(settings: Settings, ws_root: str) -> str:
    """Runs in a spawned process: fit, log and register the recommender; returns its message (its lists
    are scored with ``compute.threads`` threads: by then the customer models are done)."""
    from training.recommend_pipeline import train_recommender

    # one thread: the parent trains the customer models on the other core meanwhile
    return train_recommender(settings, Workspace(Path(ws_root)), progress=_child_progress, fit_jobs=1).message


def _load_online_store(settings: Settings, ws: Workspace) -> str:
    """Load the customer features as of the score date into the online store (what ``ecrm score`` does
    last), so the score stage can skip it."""
    from features.pipeline import customer_views
    from features.snapshots import workspace_as_of
    from features.store import apply_definitions, materialize_as_of, open_store

    as_of = workspace_as_of(ws)
    store = open_store(settings, ws)
    materialize_as_of(store, ws, as_of, customer_views(apply_definitions(store, ws)))
    return f"online store loaded with the features as of {as_of.date()}"


@dataclass
class DemoRun:
    """What the demo pipeline produced: the server, the outputs folder and the wall time of each stage."""

    url: str
    log: Path
    out: Path
    seconds: dict[str, float] = field(default_factory=dict)


def run_demo_pipeline(settings: Settings, ws: Workspace, stage: StageFactory, port: int | None = None,
                      config: Path | None = None,
                      customers: int | None = None, server_timeout: float = 180.0) -> DemoRun:
    """Synthesize, train every model, score, start the server; ``stage(name)`` reports each stage.

    A second process synthesizes the shop while this one imports the training and scoring stack, then
    trains the recommender while this one trains the customer models and loads the online store."""
    out = ws.outputs_dir / "latest"
    seconds: dict[str, float] = {}
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        t = time.perf_counter()
        with stage("1/4 synthetic shop") as say:
            synthesized = pool.submit(_synthesize_in_child, settings, str(ws.root), customers)
            from serving.batch import score_batch
            from serving.process import launch_background, stop_background
            from serving.state import ServiceState
            from training.churn_pipeline import train_churn
            from training.customer_inputs import CustomerInputs
            from training.next_purchase_pipeline import train_next_purchase
            from training.registry import configure
            from training.segment_pipeline import train_segments

            say(synthesized.result())
        seconds["synthesize"] = time.perf_counter() - t

        t = time.perf_counter()
        with stage("2/4 features + models") as say:
            configure(settings, ws)  # create the tracking database and experiment before two processes write to it
            # two trainers share the machine: one LightGBM thread each (more threads only wait on each other)
            here = settings.model_copy(update={"compute": ComputeSettings(threads=1)})
            say("recommender: training in a second process")
            recommender = pool.submit(_train_recommender_in_child, settings, str(ws.root))
            inputs = CustomerInputs(ws)  # what the three customer models read, read once
            churn = train_churn(here, ws, progress=say, inputs=inputs)
            train_next_purchase(here, ws, progress=say, base=churn.data, inputs=inputs)
            train_segments(here, ws, progress=say, inputs=inputs)
            del churn, inputs
            # while the recommender finishes: the online store load the score stage would do last
            online_loaded = False
            try:
                say(_load_online_store(settings, ws))
                online_loaded = True
            except Exception as exc:  # not fatal: the score stage loads the online store itself
                say(f"online store not loaded in advance ({type(exc).__name__}: {exc}); loading it while scoring")
            # local demo server: no API keys, one worker; it starts (imports, loads the customer models) while
            # the recommender finishes, and looks for new champions every second to serve it once registered
            server = launch_background(settings, ws, port=port, auth=False, config=config, workers=1,
                                       reload_seconds=DEMO_RELOAD_SECONDS)
            say(f"server starting on {server.url} (log: {server.log})")
            try:
                if not recommender.done():
                    say("waiting for the recommender")
                say(f"recommender: {recommender.result()}")
            except BaseException:
                stop_background(ws)
                raise
        seconds["features + models"] = time.perf_counter() - t

    t = time.perf_counter()
    with stage("3/4 score") as say:
        try:
            # reuse only this run's load (an older record may describe a store that was emptied since)
            res = score_batch(settings, ws, out, progress=say, reuse_online=online_loaded)
        except BaseException:
            stop_background(ws)
            raise
        say(f"{res.n_scored} customers scored; risk bands {res.band_counts}")
    seconds["score"] = time.perf_counter() - t

    t = time.perf_counter()
    with stage("4/4 HTTP server") as say:
        server.wait(server_timeout)
        champions = ServiceState.champion_versions(settings, ws)
        server.wait_serving(champions, server_timeout)
        say(f"serving {', '.join(f'{k} v{v}' for k, v in champions.items())} on {server.url}")
    seconds["server ready after scoring"] = time.perf_counter() - t
    return DemoRun(server.url, server.log, out, seconds)


def run_demo(c, port: int | None = None) -> None:
    """Synthesize, train, score, start the server in the background and print how to use it."""
    run = run_demo_pipeline(c.settings, c.ws, c.report.stage, port=port, config=c.config)
    url, out = run.url, run.out
    top = pd.read_csv(out / "at_risk.csv", nrows=2, dtype={"customer_id": str})["customer_id"].tolist()
    body = json.dumps({"customer_ids": [*top, "no-such-customer"]})
    rec = json.dumps({"customer_id": top[0], "k": 5})
    typer.echo(
        f"""
ecrm demo is running.

  At-risk list (CSV):  {out / 'at_risk.csv'}
  Churn scores:        {out / 'churn.parquet'}
  Next purchase, CLV:  {out / 'next_purchase.parquet'}
  Segments:            {out / 'segments.parquet'}
  Recommendations:     {out / 'recommendations.parquet'} (and recommendations_discovery.parquet)
  MLflow runs:         {tracking_uri(c.settings, c.ws)}
                       browse with: .venv/bin/mlflow ui --backend-store-uri {tracking_uri(c.settings, c.ws)}
  Server:              {url}  (stop with: make stop; the demo server needs no API key,
                       `ecrm serve` does: set ECRM_API_KEYS and send X-API-Key)

Try it:
  curl -s -X POST {url}/churn -H 'Content-Type: application/json' -d '{body}'
  curl -s -X POST {url}/next_purchase -H 'Content-Type: application/json' -d '{body}'
  curl -s -X POST {url}/segment -H 'Content-Type: application/json' -d '{body}'
  curl -s -X POST {url}/recommend -H 'Content-Type: application/json' -d '{rec}'
  curl -s {url}/model_info

Evaluate every model against its baselines (HTML report):  .venv/bin/ecrm evaluate
"""
    )
