"""An independent search for a string in every file under some folders (tests only).

Each file is searched as raw bytes in UTF-8, UTF-16 and UTF-32 (Python strings, numpy unicode arrays,
SQLite pages including free ones, logs, CSV, JSON, pickles); parquet files, whose pages are compressed,
are also decoded and every cell is searched as text.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq


def files_mentioning(roots: list[Path], needle: str) -> dict[str, str]:
    """``{path: how it was found}`` for every file under ``roots`` that holds ``needle``."""
    encoded = {enc: needle.encode(enc) for enc in ("utf-8", "utf-16-le", "utf-32-le")}
    found: dict[str, str] = {}
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            data = path.read_bytes()
            hits = [enc for enc, b in encoded.items() if b in data]
            if path.suffix == ".parquet":
                table = pq.read_table(path)
                for name in table.column_names:
                    if any(v is not None and needle in str(v) for v in table.column(name).to_pylist()):
                        hits.append(f"parquet column {name}")
            if hits:
                found[str(path)] = ", ".join(hits)
    return found
