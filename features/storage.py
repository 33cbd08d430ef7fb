"""The workspace on disk and atomic writes.

A workspace holds everything one shop's ecrm produces: canonical tables, rejects, feature snapshots,
the Feast registry and stores, the MLflow database and artifacts, and batch outputs. Two workspaces
never share a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from features.schema import TABLES, SchemaError, Table, conform


@dataclass(frozen=True)
class Workspace:
    """Paths inside one workspace folder (absolute, so Feast's DuckDB store resolves them)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser().resolve())

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def rejects_dir(self) -> Path:
        return self.root / "data" / "rejects"

    @property
    def features_dir(self) -> Path:
        return self.root / "features"

    @property
    def feast_dir(self) -> Path:
        return self.root / "feast"

    @property
    def mlflow_dir(self) -> Path:
        return self.root / "mlflow"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def table_path(self, name: str) -> Path:
        return self.data_dir / f"{name}.parquet"

    def has_table(self, name: str) -> bool:
        return self.table_path(name).is_file()

    def existing_table(self, name: str) -> Path:
        """The path of a canonical table; FileNotFoundError saying what to run when it is absent."""
        path = self.table_path(name)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no '{name}' table in workspace {self.root}; run `ecrm data load` or "
                "`ecrm data synthesize` first"
            )
        return path

    def read_table(self, name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Read a canonical table, conformed to the contract; raises FileNotFoundError if absent.

        ``columns``: only these columns, in this order (what a stage needs: a large shop's whole orders
        table takes gigabytes in memory); a name the table does not have raises ValueError."""
        path = self.existing_table(name)
        if columns is None:
            return conform(pd.read_parquet(path), TABLES[name], source=str(path))
        subset = _table_columns(name, columns)
        return conform(pd.read_parquet(path, columns=list(columns)), subset, source=str(path))

    def read_arrow(self, name: str, columns: Sequence[str]) -> pa.Table:
        """``columns`` of a canonical table as an Arrow table, as written (the tables were conformed to the
        contract when they were saved): a large shop's order lines in a fraction of the memory of pandas
        strings (1M customers' 32M order lines, five columns: 1.2 GB). Strings stay plain: grouping on
        dictionary-encoded ids first needs one dictionary for all row groups, which took longer than the
        grouping. Raises FileNotFoundError / ValueError like :meth:`read_table`."""
        import pyarrow.parquet as pq

        path = self.existing_table(name)
        _table_columns(name, columns)
        return pq.read_table(path, columns=list(columns)).replace_schema_metadata(None)


def _table_columns(name: str, columns: Sequence[str]) -> Table:
    """The contract of ``columns`` of canonical table ``name`` (no key); ValueError naming an unknown column."""
    table = TABLES[name]
    unknown = [c for c in columns if c not in table.column_names]
    if unknown:
        raise ValueError(f"table '{name}' has no column(s) {unknown}; its columns are {table.column_names}")
    by_name = {c.name: c for c in table.columns}
    return Table(name, key=(), columns=tuple(by_name[c] for c in columns))


def file_stamp(path: str | Path) -> str | None:
    """``"size:mtime_ns"`` of a file, which changes whenever it is rewritten; None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` to ``path`` so that readers see either the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet_tables_atomic(tables: Iterable[pa.Table], path: Path, what: str = "tables") -> int:
    """Write ``tables`` one after the other (each cast to the first one's schema) to ``path`` as one
    parquet file, so that only one is in memory at a time and readers see either the old file or the
    complete new one. ``what`` names them in the error raised when there is none. Returns the rows."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    writer, rows = None, 0
    try:
        for table in tables:
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table.cast(writer.schema))
            rows += table.num_rows
        if writer is None:
            raise ValueError(f"{path}: no {what} to write")
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        if writer is not None:
            writer.close()
        Path(tmp).unlink(missing_ok=True)
        raise
    return rows


def write_parquet_frames_atomic(frames: Iterable[pd.DataFrame], path: Path) -> int:
    """:func:`write_parquet_tables_atomic` for pandas frames with the same columns and dtypes (at least
    one, possibly empty): one frame in memory at a time. Returns the rows written."""
    return write_parquet_tables_atomic((pa.Table.from_pandas(df, preserve_index=False) for df in frames), path,
                                       "frames (give at least one, possibly empty)")


def write_bytes_atomic(data: bytes, path: Path) -> None:
    """Write bytes to ``path`` atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(text: str, path: Path) -> None:
    """Write UTF-8 text to ``path`` atomically (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(text.encode("utf-8"), path)


def write_json_atomic(obj: Any, path: Path) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_text_atomic(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


def write_tables(ws: Workspace, tables: dict[str, pd.DataFrame], *, source: str) -> None:
    """Validate every table first, then replace them in the workspace.

    Validation happens before anything is written, so a bad table leaves the previous tables intact.
    Tables not given are removed (a new load replaces the whole data set).
    """
    unknown = set(tables) - set(TABLES)
    if unknown:
        raise SchemaError(f"{source}: unknown table(s) {sorted(unknown)}")
    if "orders" not in tables:
        raise SchemaError(f"{source}: an 'orders' table is required")
    conformed = {name: conform(df, TABLES[name], source=f"{source} ({name})") for name, df in tables.items()}
    for name, df in conformed.items():
        write_parquet_atomic(df, ws.table_path(name))
    for name in set(TABLES) - set(conformed):
        ws.table_path(name).unlink(missing_ok=True)
