"""The erasure log: which customers were forgotten, as salted hashes of their ids, and when (UTC).

The log lets loaders recognise a forgotten customer in a later load of the same source without keeping
the id: each entry holds HMAC-SHA256(salt, id) of the id *as it appears in the source file* (so it works
whether or not ids are pseudonymized) and the time of the erasure. The salt is random per workspace and
kept beside the log (``WORKSPACE/privacy/``), so the hashes cannot be matched across workspaces or
against precomputed tables. Whoever holds the workspace can still test a guessed id against the log:
that is what recognising a returning customer requires.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from features.storage import Workspace, write_json_atomic, write_text_atomic


def privacy_dir(ws: Workspace) -> Path:
    """``WORKSPACE/privacy``: the erasure log and its salt."""
    return ws.root / "privacy"


def erasure_log_path(ws: Workspace) -> Path:
    return privacy_dir(ws) / "erasure_log.json"


def _salt_path(ws: Workspace) -> Path:
    return privacy_dir(ws) / "erasure_salt"


def erasure_salt(ws: Workspace, *, create: bool = False) -> bytes | None:
    """The workspace's salt for erasure hashes (made on first use when ``create``), or None if there is none."""
    path = _salt_path(ws)
    if path.is_file():
        return bytes.fromhex(path.read_text().strip())
    if not create:
        return None
    salt = secrets.token_bytes(32)
    write_text_atomic(salt.hex() + "\n", path)
    return salt


def erasure_hash(source_id: str, salt: bytes) -> str:
    """HMAC-SHA256(salt, id) as hex: how the log names a customer."""
    return hmac.new(salt, str(source_id).encode("utf-8"), hashlib.sha256).hexdigest()


def read_erasures(ws: Workspace) -> list[dict]:
    """Every entry of the log (``{"id_hash", "erased_at"}``), oldest first; empty when nothing was forgotten."""
    path = erasure_log_path(ws)
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text())["erasures"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a valid erasure log ({exc}); restore it from a backup") from exc
    return list(entries)


def erased_hashes(ws: Workspace) -> frozenset[str]:
    """The id hashes of every forgotten customer."""
    return frozenset(e["id_hash"] for e in read_erasures(ws))


def record_erasures(ws: Workspace, source_ids: Iterable[str], when: pd.Timestamp | None = None) -> list[dict]:
    """Add the ids to the log (once each; an id already there keeps its first time); return the new entries."""
    salt = erasure_salt(ws, create=True)
    stamp = (when or pd.Timestamp.now(tz="UTC")).tz_convert("UTC").isoformat()
    entries = read_erasures(ws)
    known = {e["id_hash"] for e in entries}
    new = []
    for cid in source_ids:
        h = erasure_hash(cid, salt)
        if h not in known:
            known.add(h)
            new.append({"id_hash": h, "erased_at": stamp})
    if new:
        write_json_atomic({"hash": "hmac-sha256(salt in erasure_salt, customer id as in the source file)",
                           "erasures": entries + new}, erasure_log_path(ws))
    return new
