"""Parquet files written a frame at a time: the same file content as one frame, atomically."""

from __future__ import annotations

import pandas as pd
import pytest

from features.storage import write_parquet_atomic, write_parquet_frames_atomic


def _frame(ids, start: int = 0) -> pd.DataFrame:
    df = pd.DataFrame({"customer_id": ids, "rank": range(start + 1, start + len(ids) + 1),
                       "score": [0.5 * i for i in range(len(ids))]})
    return df.astype({"customer_id": "string", "rank": "int64", "score": "float64"})


def test_frames_read_back_as_one_frame(tmp_path):
    parts = [_frame(["a", "b"]), _frame([]), _frame(["c"], 2)]
    path = tmp_path / "out" / "recs.parquet"
    assert write_parquet_frames_atomic(iter(parts), path) == 3
    whole = tmp_path / "whole.parquet"
    write_parquet_atomic(pd.concat(parts, ignore_index=True), whole)
    pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(whole))
    assert pd.read_parquet(path)["customer_id"].dtype == "string"
    # one empty frame: an empty file with the columns
    assert write_parquet_frames_atomic([_frame([])], path) == 0
    assert list(pd.read_parquet(path).columns) == ["customer_id", "rank", "score"] and len(pd.read_parquet(path)) == 0


def test_a_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "recs.parquet"
    write_parquet_frames_atomic([_frame(["old"])], path)

    def failing():
        yield _frame(["new"])
        raise RuntimeError("scoring failed half way")

    with pytest.raises(RuntimeError, match="half way"):
        write_parquet_frames_atomic(failing(), path)
    assert pd.read_parquet(path)["customer_id"].tolist() == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["recs.parquet"]
    with pytest.raises(ValueError, match="no frames"):
        write_parquet_frames_atomic([], path)
    assert pd.read_parquet(path)["customer_id"].tolist() == ["old"]
