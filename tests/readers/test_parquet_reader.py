"""Parquet reader: real rows round-trip across record batches; NaN -> None; bad files raise."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kalm_data.readers import parquet


def test_round_trip_across_batches(tmp_path, pairs, read_all, monkeypatch):
    monkeypatch.setattr(parquet, "BATCH_ROWS", 7)  # 50 rows -> 8 batches
    rows_in = [{**p, "tags": [[p["qtype"]], [p["focus"], "x"]]} for p in pairs]
    pq.write_table(pa.Table.from_pylist(rows_in), tmp_path / "pairs.parquet", row_group_size=16)
    rows = read_all(tmp_path / "pairs.parquet")
    assert [r.payload for r in rows] == rows_in
    assert [r.source_row for r in rows] == list(range(1, len(pairs) + 1))  # 1-based rows
    assert {(r.task, r.error, r.source_file) for r in rows} == {
        ("pairs", None, str(tmp_path / "pairs.parquet"))
    }


def test_nan_becomes_none_and_nulls_stay(tmp_path, read_all):
    table = pa.table({"q": ["a", None, "c"], "score": [1.0, float("nan"), None]})
    pq.write_table(table, tmp_path / "n.parquet")
    payloads = [r.payload for r in read_all(tmp_path / "n.parquet")]
    assert payloads == [
        {"q": "a", "score": 1.0},
        {"q": None, "score": None},
        {"q": "c", "score": None},
    ]


def test_unreadable_parquet_raises_naming_the_file(tmp_path, read_all):
    (tmp_path / "junk.parquet").write_bytes(b"this is not parquet" * 10)
    with pytest.raises(ValueError, match="junk.parquet: not a readable Parquet file"):
        read_all(tmp_path / "junk.parquet")
    with pytest.raises(FileNotFoundError, match="gone.parquet: no such input file"):
        read_all(tmp_path / "gone.parquet")
