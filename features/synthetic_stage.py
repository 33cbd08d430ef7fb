"""The ``ecrm data synthesize`` stage: generate the synthetic shop into a workspace, idempotently.

The shop is streamed straight into the workspace's parquet tables, row group by row group (see
:func:`features.synthetic.generate_shop`), so a shop of any size is written without holding it in
memory. Every table goes to a temporary file beside its destination, and they are renamed into place
only once the whole shop is written: a failure leaves the previous tables as they were.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from configs.settings import Settings
from features.schema import TABLES
from features.storage import Workspace, write_json_atomic

# String columns with about as many distinct values as a row group has rows: a dictionary costs
# time and saves little space on them, so they are stored plain.
_PLAIN_STRING_COLUMNS = frozenset({"order_id", "session_id", "customer_id", "name"})


class WorkspaceTableWriter:
    """Streams canonical tables into a workspace.

    :meth:`write` appends a row group to a table's temporary file; :meth:`commit` renames every written
    table into place and removes the canonical tables that were not written (a new data set replaces the
    old one as a whole). Leaving the ``with`` block without committing deletes the temporary files.

    Encoding: the few-valued string columns are dictionary-encoded, the id-like ones plain; min/max
    statistics are kept for the non-string columns (times, amounts), where readers use them to skip
    row groups, and not computed for strings (a third of the writing time).
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._temps: dict[str, Path] = {}

    def write(self, name: str, table: pa.Table) -> None:
        """Append ``table`` to the canonical table ``name`` as one row group."""
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r}")
        if name not in self._writers:
            path = self.ws.table_path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            self._temps[name] = Path(tmp)
            self._writers[name] = _parquet_writer(Path(tmp), table.schema)
        self._writers[name].write_table(table, row_group_size=max(table.num_rows, 1))

    def commit(self) -> None:
        """Close the files, move every written table into place, remove the tables not written."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        written = set(self._temps)
        for name in sorted(written):
            os.replace(self._temps.pop(name), self.ws.table_path(name))
        for name in set(TABLES) - written:
            self.ws.table_path(name).unlink(missing_ok=True)

    def __enter__(self) -> WorkspaceTableWriter:
        """The writer itself."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Discard whatever was not committed."""
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception:  # the file is deleted next; the error that got us here is what matters
                pass
        for tmp in self._temps.values():
            tmp.unlink(missing_ok=True)


def _parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A parquet writer with the encoding described in :class:`WorkspaceTableWriter`."""
    strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return pq.ParquetWriter(path, schema,
                            use_dictionary=[c for c in strings if c not in _PLAIN_STRING_COLUMNS],
                            write_statistics=[f.name for f in schema if f.name not in strings])


def synthesize_into(settings: Settings, ws: Workspace, customers: int | None = None, products: int | None = None,
                    seed: int | None = None, progress: Callable[[str], None] | None = None,
                    replace: bool = False) -> bool:
    """Generate and store the shop unless the workspace already holds the same one; True if generated.

    A workspace holding loaded (non-synthetic) data is never overwritten unless ``replace`` is true.
    The blocks of the shop are spilled to a temporary folder in the workspace's data folder meanwhile;
    ``settings.compute.threads`` processes (and threads) generate and write them.
    """
    from features.synthetic import generate_shop

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
    ws.data_dir.mkdir(parents=True, exist_ok=True)
    with WorkspaceTableWriter(ws) as tables:
        counts = generate_shop(tables.write, **params, progress=say, scratch_dir=ws.data_dir,
                               workers=settings.compute.threads)
        tables.commit()
    write_json_atomic({"source": "synthetic", "params": params, "counts": counts,
                       "loaded_at": pd.Timestamp.now(tz="UTC").isoformat()}, manifest_path)
    say(", ".join(f"{n}: {c:,} rows" for n, c in counts.items()))
    return True
