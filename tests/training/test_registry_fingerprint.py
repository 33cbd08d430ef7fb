"""training.registry.local_registry_fingerprint: a promotion changes the local SQLite registry's mark (so the
service's hot reload sees it without asking MLflow), and nothing else does."""

from __future__ import annotations

from configs.settings import Settings
from features.storage import Workspace
from training.registry import configure, local_registry_fingerprint, tracking_uri


def test_a_promotion_changes_the_mark_and_reads_do_not(tmp_path):
    settings = Settings(workspace=tmp_path)
    ws = Workspace(settings.workspace)
    client = configure(settings, ws)
    uri = tracking_uri(settings, ws)
    client.create_registered_model("ecrm-churn")
    for _ in range(2):
        client.create_model_version("ecrm-churn", source=str(tmp_path / "model"))
    client.set_registered_model_alias("ecrm-churn", "champion", "1")
    before = local_registry_fingerprint(uri)
    assert before is not None and before != "-;-;-"
    assert int(client.get_model_version_by_alias("ecrm-churn", "champion").version) == 1
    assert local_registry_fingerprint(uri) == before  # reading leaves it
    client.set_registered_model_alias("ecrm-churn", "champion", "2")  # a promotion
    assert local_registry_fingerprint(uri) != before


def test_a_registry_on_a_server_has_no_mark():
    assert local_registry_fingerprint("postgresql+psycopg://ecrm@db:5432/mlflow") is None
    assert local_registry_fingerprint("http://mlflow.internal:5000") is None
