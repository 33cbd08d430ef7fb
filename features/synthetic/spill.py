"""Spilled blocks of the synthetic shop: each block's rows of a table, grouped by day, in one raw file per
column in a scratch folder (ids still integers: customer, product, order rank, session), read back one
time window (a range of whole days) at a time from all blocks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from features.synthetic.arrays import _lex_order
from features.synthetic.clock import _DAY, _Clock

_ORDER_COLUMNS = {"rank": np.int64, "customer": np.int32, "product": np.int32, "quantity": np.float64,
                  "unit_price": np.float64, "sec": np.int64, "is_return": np.bool_}
_SESSION_COLUMNS = {"session": np.int32, "customer": np.int32, "kind": np.int8, "product": np.int32,
                    "sec": np.int64}
_TABLE_COLUMNS = {"orders": _ORDER_COLUMNS, "sessions": _SESSION_COLUMNS}


def _column_path(folder: Path, table: str, block: int, column: str) -> Path:
    """The raw file of one column of one block's rows of ``table``."""
    return folder / f"{table}.{block:06d}.{column}.bin"


def _spill_block(folder: Path, table: str, block: int, rows: dict[str, np.ndarray], clock: _Clock) -> np.ndarray:
    """Write one block's rows of ``table`` grouped by day (a day's rows keep their order), one raw file
    per column; returns the row offset of every day edge (length: days + 1)."""
    n_days = _n_days(clock)
    day = (rows["sec"] - clock.first_sec) // _DAY
    order = _lex_order([day])
    for column, dtype in _TABLE_COLUMNS[table].items():
        rows[column][order].astype(dtype, copy=False).tofile(_column_path(folder, table, block, column))
    return np.searchsorted(day[order], np.arange(n_days + 1))


def _n_days(clock: _Clock) -> int:
    """Days in the period (the last one may be partial)."""
    return max(1, math.ceil((clock.last_sec + 1 - clock.first_sec) / _DAY))


class _SpilledTable:
    """The spilled rows of one table, every block grouped by day: reads a range of days from all blocks
    at once (a merge sort in time windows)."""

    def __init__(self, folder: Path, table: str, day_offsets: list[np.ndarray]) -> None:
        self.folder, self.table, self.day_offsets = folder, table, day_offsets
        self.rows = int(sum(int(o[-1]) for o in day_offsets))

    def rows_per_day(self) -> np.ndarray:
        """Rows of each day, all blocks together."""
        return np.sum([np.diff(o) for o in self.day_offsets], axis=0)

    def windows(self, target_rows: int) -> list[tuple[int, int]]:
        """Consecutive day ranges of about ``target_rows`` rows each (whole days; at least one range)."""
        cum = np.cumsum(self.rows_per_day())
        n_days = len(cum)
        cuts = np.searchsorted(cum, np.arange(target_rows, int(cum[-1]), target_rows), side="left") + 1
        bounds = np.unique(np.concatenate([[0], np.minimum(cuts, n_days), [n_days]]))
        return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))

    def read(self, d0: int, d1: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The rows of days ``[d0, d1)`` of every block, block after block, and the block of each row."""
        counts = np.array([int(o[d1] - o[d0]) for o in self.day_offsets], dtype=np.int64)
        out = {}
        for column, dtype in _TABLE_COLUMNS[self.table].items():
            item = np.dtype(dtype).itemsize
            parts = []
            for block, offsets in enumerate(self.day_offsets):
                with _column_path(self.folder, self.table, block, column).open("rb") as fh:
                    fh.seek(int(offsets[d0]) * item)
                    parts.append(np.fromfile(fh, dtype=dtype, count=int(counts[block])))
            out[column] = np.concatenate(parts)
        return out, np.repeat(np.arange(len(self.day_offsets)), counts)
