"""``ecrm forget``: remove customers from everything a workspace holds, and log the erasure.

Where customer ids live in a workspace, and what happens there:

- canonical tables (``data/*.parquet``), rejects (``data/rejects/``), feature snapshots (``features/``),
  batch outputs (``outputs/``, every ``ecrm score --out`` folder the workspace recorded, folders given with
  ``--out``), server state (``state/``), MLflow artifacts (``mlflow/``): every parquet file loses the rows
  of the customers (column ``customer_id``; in the rejects also the file's own customer id column), every
  CSV file likewise, every pickled recommender their ids, lists and purchase history, every ``.log``
  file the lines that mention them;
- the Feast online store: their entity rows (:mod:`features.privacy.online`).

The erasure is logged first (salted id hash and UTC time, :mod:`features.privacy.erasure_log`), so from that
moment no load brings the customers back, even if a later step fails; running ``forget`` again finishes it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from configs.settings import Settings
from features.privacy.erasure_log import privacy_dir, record_erasures
from features.privacy.online import delete_online_customers
from features.privacy.pseudonyms import PrivacyError, pseudonym_key, pseudonyms
from features.privacy.scrub import CUSTOMER_COLUMN, drop_csv_rows, drop_log_lines, drop_parquet_rows, scrub_pickle
from features.storage import Workspace, write_json_atomic


def output_dirs_path(ws: Workspace) -> Path:
    """The list of ``ecrm score --out`` folders this workspace wrote to."""
    return ws.state_dir / "output_dirs.json"


def known_output_dirs(ws: Workspace) -> list[Path]:
    """Every batch-output folder the workspace recorded (see :func:`record_output_dir`)."""
    path = output_dirs_path(ws)
    return [Path(p) for p in json.loads(path.read_text())] if path.is_file() else []


def record_output_dir(ws: Workspace, out_dir: Path) -> None:
    """Remember a folder ``ecrm score`` wrote customer scores to, so ``ecrm forget`` cleans it too."""
    out = Path(out_dir).expanduser().resolve()
    dirs = known_output_dirs(ws)
    if out not in dirs:
        write_json_atomic([str(p) for p in [*dirs, out]], output_dirs_path(ws))


def _manifest(ws: Workspace) -> dict:
    path = ws.data_dir / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def workspace_ids(ws: Workspace, source_ids: Sequence[str]) -> list[str]:
    """The ids the workspace stores for these source ids: pseudonyms when the data was loaded pseudonymized."""
    if _manifest(ws).get("customer_ids") != "pseudonymized":
        return list(source_ids)
    try:
        key = pseudonym_key()
    except PrivacyError as exc:
        raise PrivacyError(f"{ws.data_dir / 'manifest.json'}: this workspace holds pseudonymized customer ids; "
                           f"{exc}") from exc
    return pseudonyms(source_ids, key)


@dataclass
class ForgetReport:
    """What ``forget`` removed, where (path relative to the workspace, or ``online store``), and when."""

    erased_at: pd.Timestamp
    customers: int
    newly_logged: int
    removed: dict[str, int] = field(default_factory=dict)  # place -> rows / lines / customers removed
    unreachable: list[str] = field(default_factory=list)  # places outside the workspace forget cannot clean


def _files(folder: Path, skip: Iterable[Path] = ()) -> list[Path]:
    skip = {p.resolve() for p in skip}
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and not any(s == p.resolve() or s in p.resolve().parents for s in skip))


def _scrub_file(path: Path, ids: list[str], rejects_column: str | None) -> int:
    """Remove the customers from one file, by kind; 0 for kinds that never hold customer rows."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        n = drop_parquet_rows(path, ids, CUSTOMER_COLUMN)
        if rejects_column and rejects_column != CUSTOMER_COLUMN:
            n += drop_parquet_rows(path, ids, rejects_column)
        return n
    if suffix == ".csv":
        return drop_csv_rows(path, ids, CUSTOMER_COLUMN)
    if suffix == ".pkl":
        return scrub_pickle(path, ids)
    if suffix == ".log":
        return drop_log_lines(path, ids)
    return 0


def forget_customers(settings: Settings, ws: Workspace, source_ids: Sequence[str],
                     extra_dirs: Sequence[Path] = (), when: pd.Timestamp | None = None) -> ForgetReport:
    """Remove the customers (ids as in the shop's files) from the workspace and everything it knows of."""
    source_ids = list(dict.fromkeys(str(c).strip() for c in source_ids))
    if not source_ids or any(not c for c in source_ids):
        raise ValueError("forget: give one or more non-empty customer ids")
    ids = workspace_ids(ws, source_ids)
    when = (when or pd.Timestamp.now(tz="UTC")).tz_convert("UTC")
    report = ForgetReport(when, len(source_ids), len(record_erasures(ws, source_ids, when)))
    rejects_column = _manifest(ws).get("customer_column") or None
    online_db = ws.feast_dir / "online_store.db"

    def scrub(path: Path, column: str | None = None) -> None:
        n = _scrub_file(path, ids, column)
        if n:
            label = str(path.relative_to(ws.root)) if ws.root in path.resolve().parents else str(path)
            report.removed[label] = report.removed.get(label, 0) + n

    for path in _files(ws.root, skip=[privacy_dir(ws), online_db]):
        scrub(path, rejects_column if ws.rejects_dir in path.parents else None)
    outside = [d.expanduser().resolve() for d in [*known_output_dirs(ws), *extra_dirs]]
    for folder in dict.fromkeys(d for d in outside if ws.root not in d.parents and d != ws.root):
        for path in _files(folder):
            scrub(path)
    n = delete_online_customers(settings, ws, ids)
    if n:
        report.removed[f"online store ({settings.feast.online_store.type})"] = n
    uri = os.environ.get("MLFLOW_TRACKING_URI") or settings.mlflow.tracking_uri
    if uri and uri != f"sqlite:///{ws.mlflow_dir / 'mlflow.db'}":  # artifacts are not in the workspace
        report.unreachable.append(f"MLflow artifacts of {uri}: retrain the recommender there "
                                  "(`ecrm train --model recommender --force`)")
    return report
