"""The ``ecrm data synthesize`` stage: generate the synthetic shop into a workspace, idempotently."""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd

from configs.settings import Settings
from features.storage import Workspace, write_json_atomic, write_tables


def synthesize_into(settings: Settings, ws: Workspace, customers: int | None = None, products: int | None = None,
                    seed: int | None = None, progress: Callable[[str], None] | None = None,
                  replace: bool = False) -> bool:
    """Generate and store the shop unless the workspace already holds the same one; True if generated.

    A workspace holding loaded (non-synthetic) data is never overwritten unless ``replace`` is true.
    """
    from features.synthetic import synthesize_shop

    say = progress or (lambda _m: None)
    cfg = settings.synthetic
    params = {"customers": customers or cfg.customers, "products": products or cfg.products,
              "seed": cfg.seed if seed is None else seed, "start": cfg.start, "end": cfg.end}
    manifest_path = ws.data_dir / "manifest.json"
    if manifest_path.is_file() and ws.has_table("orders"):
        old = json.loads(manifest_path.read_text())
        if old.get("source") == "synthetic" and old.get("params") == params:
            say(f"workspace already holds the synthetic shop {params}: nothing to do")
            return False
        if old.get("source") != "synthetic" and not replace:
            raise FileExistsError(
                f"workspace {ws.root} holds data loaded from '{old.get('source')}'; the synthetic shop would "
                f"replace it: use another --workspace, or pass --replace to overwrite")
    tables = synthesize_shop(**params, progress=say)
    write_tables(ws, tables, source="synthetic shop")
    counts = {name: len(df) for name, df in tables.items()}
    write_json_atomic({"source": "synthetic", "params": params, "counts": counts,
                       "loaded_at": pd.Timestamp.now(tz="UTC").isoformat()}, manifest_path)
    say(", ".join(f"{n}: {c:,} rows" for n, c in counts.items()))
    return True
