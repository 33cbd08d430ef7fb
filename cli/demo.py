"""``ecrm demo``: the whole service on the embedded synthetic shop, ending with a running server."""

from __future__ import annotations

import json

import pandas as pd
import typer

from training.registry import tracking_uri


def run_demo(c, port: int | None = None) -> None:
    """Synthesize, train, score, start the server in the background and print how to use it."""
    from features.synthetic_stage import synthesize_into
    from serving.batch import score_batch
    from serving.process import start_background
    from training.churn_pipeline import train_churn
    from training.next_purchase_pipeline import train_next_purchase
    from training.recommend_pipeline import train_recommender
    from training.segment_pipeline import train_segments

    out = c.ws.outputs_dir / "latest"
    with c.report.stage("1/4 synthetic shop") as say:
        synthesize_into(c.settings, c.ws, progress=say)
    with c.report.stage("2/4 features + models") as say:
        churn = train_churn(c.settings, c.ws, progress=say)
        train_next_purchase(c.settings, c.ws, progress=say, base=churn.data)
        train_segments(c.settings, c.ws, progress=say)
        train_recommender(c.settings, c.ws, progress=say)
    with c.report.stage("3/4 score (at-risk list)") as say:
        res = score_batch(c.settings, c.ws, out, progress=say)
        say(f"{res.n_scored} customers scored; risk bands {res.band_counts}")
    with c.report.stage("4/4 HTTP server") as say:
        url, log = start_background(c.settings, c.ws, port=port)
        say(f"serving on {url} (log: {log})")
    top = pd.read_csv(out / "at_risk.csv", nrows=2, dtype={"customer_id": str})["customer_id"].tolist()
    body = json.dumps({"customer_ids": [*top, "no-such-customer"]})
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
  Server:              {url}  (stop with: make stop)

Try it:
  curl -s -X POST {url}/churn -H 'Content-Type: application/json' -d '{body}'
  curl -s -X POST {url}/next_purchase -H 'Content-Type: application/json' -d '{body}'
  curl -s -X POST {url}/segment -H 'Content-Type: application/json' -d '{body}'
  curl -s {url}/model_info

Evaluate every model against its baselines (HTML report):  .venv/bin/ecrm evaluate
"""
    )
