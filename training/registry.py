"""MLflow tracking and model registry for a workspace: where runs go, registration and aliases.

Default: a SQLite database and an artifact folder inside the workspace; ``mlflow.tracking_uri`` in the
config or the ``MLFLOW_TRACKING_URI`` environment variable (which wins) point elsewhere (e.g. a
PostgreSQL-backed server). Registered model names: ``ecrm-churn`` etc.; aliases ``champion`` and
``challenger``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from configs.runtime import quiet_dependencies
from configs.settings import Settings
from features.storage import Workspace, file_stamp

CHURN_MODEL = "ecrm-churn"
NEXT_PURCHASE_MODEL = "ecrm-next-purchase"
SEGMENT_MODEL = "ecrm-segments"
RECOMMENDER_MODEL = "ecrm-recommender"
CHAMPION = "champion"
CHALLENGER = "challenger"


def tracking_uri(settings: Settings, ws: Workspace) -> str:
    """The tracking/registry URI: environment, then config, then the workspace's SQLite file.

    ``postgresql://`` means the psycopg2 driver to SQLAlchemy; ecrm ships psycopg 3, so such a URI is
    read as ``postgresql+psycopg://`` unless psycopg2 is installed.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI") or settings.mlflow.tracking_uri
    if not uri:
        return f"sqlite:///{ws.mlflow_dir / 'mlflow.db'}"
    scheme, sep, rest = uri.partition("://")
    if sep and scheme in ("postgresql", "postgres") and importlib.util.find_spec("psycopg2") is None:
        return f"postgresql+psycopg://{rest}"
    return uri


def local_registry_fingerprint(uri: str) -> str | None:
    """Size and modification time of a SQLite registry's database files (with its ``-wal`` and ``-journal``
    files), which change with every write to it; None for a registry on a server (PostgreSQL, an MLflow
    server), where only asking it tells."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///")
    return ";".join(file_stamp(name) or "-" for name in (path, f"{path}-wal", f"{path}-journal"))


def artifact_location(settings: Settings, ws: Workspace, uri: str) -> str | None:
    """Where a newly created experiment keeps its artifacts.

    The configured ``mlflow.artifact_location`` if any; else, for a database tracking URI (SQLite,
    PostgreSQL, ...), the workspace's artifact folder (MLflow's own default would be ``./mlruns`` in the
    current directory); for an MLflow server (http/https/databricks), the server decides (None).
    """
    if settings.mlflow.artifact_location:
        return settings.mlflow.artifact_location
    if uri.partition("://")[0] in ("http", "https", "databricks"):
        return None
    return (ws.mlflow_dir / "artifacts").as_uri()


def _set_uris(uri: str) -> None:
    """Point mlflow's process-wide tracking and registry URIs at ``uri``.

    ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into this process's environment, which
    :func:`tracking_uri` reads as the user's override: a later workspace or config in the same process
    (tests, notebooks) would then silently use this one's database. The environment is put back.
    """
    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


def configure(settings: Settings, ws: Workspace) -> MlflowClient:
    """Point mlflow at this workspace's tracking server and experiment; return a client for it."""
    ws.mlflow_dir.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri(settings, ws)
    _set_uris(uri)
    name = settings.mlflow.experiment
    with quiet_dependencies():  # the first call creates the tracking database
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        if client.get_experiment_by_name(name) is None:
            client.create_experiment(name, artifact_location=artifact_location(settings, ws, uri))
        mlflow.set_experiment(name)
    return client


@dataclass(frozen=True)
class ModelRef:
    """A registered model version and what was recorded about it."""

    name: str
    version: int
    run_id: str
    aliases: tuple[str, ...]
    tags: dict[str, str]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def get_alias(client: MlflowClient, name: str, alias: str) -> ModelRef | None:
    """The version holding ``alias`` of model ``name``, or None."""
    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return ModelRef(name, int(mv.version), mv.run_id, tuple(mv.aliases), dict(mv.tags))


def _logged_model_id(model_uri: str) -> str | None:
    """The model id of a logged model's URI ``models:/m-<hex>``, else None."""
    rest = model_uri.removeprefix("models:/")
    return rest if rest != model_uri and rest.startswith("m-") and "/" not in rest else None


def register_version(client: MlflowClient, name: str, run_id: str, model_uri: str, tags: dict[str, Any]) -> ModelRef:
    """Register the logged model as a new version of ``name`` with tags."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description=f"ecrm model {name}")
    # a logged model's ``models:/<model_id>`` URI: an MLflow tracking server (http) refuses it as the
    # source unless the model id is given too (the database stores accept both)
    model_id = _logged_model_id(model_uri)
    mv = client.create_model_version(name, model_uri, run_id=run_id, tags={k: str(v) for k, v in tags.items()},
                                     model_id=model_id)
    return ModelRef(name, int(mv.version), run_id, (), {k: str(v) for k, v in tags.items()})


def set_alias(client: MlflowClient, ref: ModelRef, alias: str) -> None:
    """Move ``alias`` to this version."""
    client.set_registered_model_alias(ref.name, alias, str(ref.version))


def load_model(client: MlflowClient, name: str, alias: str = CHAMPION) -> tuple[Any, ModelRef]:
    """Load the estimator behind ``name@alias``; raise LookupError when there is none."""
    ref = get_alias(client, name, alias)
    if ref is None:
        raise LookupError(f"no '{alias}' version of model '{name}' in {client.tracking_uri}; run `ecrm train` first")
    import mlflow.sklearn

    return mlflow.sklearn.load_model(f"models:/{name}@{alias}"), ref


def find_trained(client: MlflowClient, name: str, tags: dict[str, Any]) -> tuple[ModelRef, str] | None:
    """The champion or challenger of ``name`` trained with exactly these tags (same data and config), if any."""
    for alias in (CHAMPION, CHALLENGER):
        ref = get_alias(client, name, alias)
        if ref and all(ref.tags.get(k) == str(v) for k, v in tags.items()):
            return ref, alias
    return None


def register_with_alias(client: MlflowClient, name: str, run_id: str, model_uri: str, tags: dict[str, Any],
                        good: bool) -> tuple[ModelRef, str | None]:
    """Register a new version and give it an alias.

    * not good (it lost to its baseline on validation): no alias;
    * no champion yet: ``champion``;
    * the champion's configuration (tag ``model_config``) retrained on newer data: ``champion`` (a refresh
      of the same model, not a challenge);
    * a different configuration: ``challenger``; moving ``champion`` to it is the promotion gate's job
      (``ecrm promote``).
    """
    ref = register_version(client, name, run_id, model_uri, tags)
    alias = None
    if good:
        champion = get_alias(client, name, CHAMPION)
        same_config = champion is not None and champion.tags.get("model_config") == str(tags.get("model_config"))
        alias = CHAMPION if champion is None or same_config else CHALLENGER
        set_alias(client, ref, alias)
    return ref, alias


def list_versions(client: MlflowClient, name: str) -> list[ModelRef]:
    """Every registered version of ``name``, newest first (empty when the model is not registered)."""
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return []
    # search results do not carry aliases in every MLflow store: read them from the registered model
    by_version: dict[int, list[str]] = {}
    for alias, ver in client.get_registered_model(name).aliases.items() if versions else ():
        by_version.setdefault(int(ver), []).append(alias)
    refs = [ModelRef(name, int(v.version), v.run_id, tuple(sorted(by_version.get(int(v.version), []))), dict(v.tags))
            for v in versions]
    return sorted(refs, key=lambda r: -r.version)
