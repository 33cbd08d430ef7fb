"""Remove customers from the Feast online store (the snapshot the HTTP service reads).

Feast 0.67 has no call to delete single entity rows from an online store (``OnlineStore`` offers writes,
reads and whole-table ``update``/``teardown``; Redis has ``delete_entity_values`` for a whole join key
only). So the rows are deleted here with Feast's own table names and entity-key serialization:

- SQLite: ``DELETE`` of the customers' rows in every customer feature view's table, then ``VACUUM`` so the
  deleted rows do not linger in free pages of the file;
- Redis: ``DEL`` of the customers' keys (one hash per entity holds every view's features).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection

from configs.settings import Settings
from features.storage import Workspace


def _entity_keys(ids: Collection[str]) -> list:
    """Feast entity keys of customer ids (join key ``customer_id``, string values)."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return [EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=str(c))]) for c in sorted(ids)]


def delete_online_customers(settings: Settings, ws: Workspace, ids: Collection[str]) -> int:
    """Delete the customers' rows from the configured online store; returns the rows (SQLite) or keys (Redis)
    removed. Nothing to do (0) when the workspace has no feature registry yet."""
    if not ids or not (ws.feast_dir / "registry.db").is_file():
        return 0
    from features.store import open_store

    store = open_store(settings, ws)
    views = [fv for fv in store.list_feature_views() if "customer_id" in fv.join_keys]
    if not views:
        return 0
    config = store.config
    keys = _entity_keys(ids)
    if settings.feast.online_store.type == "redis":
        return _delete_redis(config, keys)
    return _delete_sqlite(config, views, keys)


def _delete_sqlite(config, views, entity_keys: list) -> int:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.sqlite import SqliteOnlineStore, _table_id

    keys = [serialize_entity_key(k, entity_key_serialization_version=config.entity_key_serialization_version)
            for k in entity_keys]
    path = SqliteOnlineStore._get_db_path(config)
    try:
        conn = sqlite3.connect(path, timeout=30)
    except sqlite3.Error as exc:
        raise ValueError(f"{path}: cannot open the online store ({exc})") from exc
    removed = 0
    try:
        existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        marks = ",".join("?" * len(keys))
        with conn:
            for fv in views:
                table = _table_id(config.project, fv, config.registry.enable_online_feature_view_versioning)
                if table in existing:
                    quoted = '"' + table.replace('"', '""') + '"'
                    removed += conn.execute(f"DELETE FROM {quoted} WHERE entity_key IN ({marks})", keys).rowcount
        if removed:
            _vacuum(conn, path)
    finally:
        conn.close()
    return removed


def _vacuum(conn: sqlite3.Connection, path: str, attempts: int = 20) -> None:
    """Rewrite the file without free pages (retrying while a reader, e.g. the server, holds a lock)."""
    for attempt in range(attempts):
        try:
            conn.execute("VACUUM")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise ValueError(f"{path}: rows deleted but the file could not be compacted ({exc}); "
                                 "run `ecrm forget` again") from exc
            time.sleep(0.25)


def _delete_redis(config, entity_keys: list) -> int:
    from feast.infra.online_stores.helpers import _redis_key
    from feast.infra.online_stores.redis import RedisOnlineStore

    client = RedisOnlineStore()._get_client(config.online_store)
    keys = [_redis_key(config.project, k, entity_key_serialization_version=config.entity_key_serialization_version)
            for k in entity_keys]
    return int(client.delete(*keys))
