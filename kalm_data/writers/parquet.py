"""Atomic Parquet writes with an explicit schema, on any fsspec filesystem.

Contract: ``write_table`` writes to a hidden temporary name beside the target and renames it,
so a reader (or a rerun after a kill) sees a whole file or none. ``write_parts`` splits rows into
``part-00000-of-00003.parquet`` files whose names depend only on the row count, so a rerun
replaces exactly the files it wrote before. Rows are converted to Arrow one row group at a time.
"""

from __future__ import annotations

import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from kalm_data.arrow_schema import to_arrow_schema, to_table

ROW_GROUP = 4096  # rows converted to Arrow and written at a time


def write_table(table: pa.Table, path: str) -> None:
    """Write ``table`` to ``path`` atomically (temporary file, then rename)."""
    import fsspec

    fs, target = fsspec.core.url_to_fs(path)
    folder = target.rsplit("/", 1)[0]
    fs.makedirs(folder, exist_ok=True)
    tmp = f"{folder}/.tmp-{uuid.uuid4().hex}.parquet"
    with fs.open(tmp, "wb") as f:
        pq.write_table(table, f, compression="zstd")
    fs.mv(tmp, target)


def write_rows(model: type[BaseModel], rows: list[dict], path: str) -> None:
    """Write ``rows`` as one ``model``-typed file at ``path`` atomically, converting and
    writing ``ROW_GROUP`` rows at a time: the Arrow copy of the rows never exceeds a row group."""
    import fsspec

    fs, target = fsspec.core.url_to_fs(path)
    folder = target.rsplit("/", 1)[0]
    fs.makedirs(folder, exist_ok=True)
    tmp = f"{folder}/.tmp-{uuid.uuid4().hex}.parquet"
    schema = to_arrow_schema(model)
    with fs.open(tmp, "wb") as f, pq.ParquetWriter(f, schema, compression="zstd") as writer:
        for start in range(0, max(len(rows), 1), ROW_GROUP):
            writer.write_table(to_table(model, rows[start : start + ROW_GROUP]))
    fs.mv(tmp, target)


def part_name(folder: str, i: int, n_parts: int) -> str:
    """``folder/part-0000i-of-0000n.parquet``."""
    return f"{folder.rstrip('/')}/part-{i:05d}-of-{n_parts:05d}.parquet"


def parts_of(rows: int, rows_per_part: int) -> int:
    """How many parts ``rows`` rows are written as."""
    return max(1, -(-rows // rows_per_part))


def write_parts(
    model: type[BaseModel], rows: list[dict], folder: str, rows_per_part: int
) -> list[str]:
    """Write ``rows`` as ``model``-typed parts under ``folder``; returns the paths written."""
    n_parts = parts_of(len(rows), rows_per_part)
    paths = []
    for i in range(n_parts):
        path = part_name(folder, i, n_parts)
        write_rows(model, rows[i * rows_per_part : (i + 1) * rows_per_part], path)
        paths.append(path)
    return paths
