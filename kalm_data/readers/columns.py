"""A quick look at a file's columns and whether it has any data row, reading only its head.

Contract: each ``peek_*`` returns a ``Peek``: the column names in file order and whether at least
one data row exists (an unparseable row counts). Columns come from the CSV/TSV header, the
Parquet schema, or, for JSONL, the union of the keys of the first ``SAMPLE_OBJECTS`` JSON objects
(at most ``SCAN_ROWS`` non-blank lines are parsed). Blank lines are not rows. Whole-file problems
the readers would raise on raise the same way here: ``ValueError("<path>: ...")`` (a bad header,
unreadable Parquet, JSONL whose sampled lines hold no JSON object) or ``OSError`` from
``open_input`` (unreadable or badly compressed bytes).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from kalm_data.readers.common import open_input
from kalm_data.readers.csv import Lines, make_reader, read_header
from kalm_data.readers.jsonl import read_jsonl

#: JSONL: the keys of this many parsed objects make the column list.
SAMPLE_OBJECTS = 1000
#: JSONL: stop after this many non-blank lines even if fewer were objects.
SCAN_ROWS = 10_000


@dataclass(frozen=True)
class Peek:
    """The columns of a file (in file order) and whether it has at least one data row."""

    columns: tuple[str, ...]
    has_rows: bool


def peek_jsonl(path: str) -> Peek:
    """Keys of the first JSON objects; ``ValueError`` if the sampled lines hold none."""
    columns: dict[str, None] = {}  # an ordered set
    rows = objects = 0
    first_error = None
    with closing(read_jsonl(path, task="")) as raw_rows:
        for row in raw_rows:
            rows += 1
            if row.payload is None:
                first_error = first_error or row
            else:
                objects += 1
                columns.update(dict.fromkeys(row.payload))
            if objects >= SAMPLE_OBJECTS or rows >= SCAN_ROWS:
                break
    if rows and not objects:
        raise ValueError(
            f"{path}: no JSON object in the first {rows} row(s) "
            f"(line {first_error.source_row}: {first_error.error}); "
            "JSON Lines needs one object per line"
        )
    return Peek(tuple(columns), rows > 0)


def peek_csv(path: str, delimiter: str) -> Peek:
    """The header of a CSV/TSV file; a file of blank lines only has no columns and no rows."""
    with open_input(path) as f:
        lines = Lines(f)
        reader = make_reader(lines, delimiter)
        try:
            header = read_header(path, reader, lines)
        except ValueError:
            header_is_blank = not b"".join(lines.row_lines).strip()
            if header_is_blank and not _has_record(reader):
                return Peek((), False)
            raise
        if header is None:
            return Peek((), False)
        return Peek(tuple(header), _has_record(reader))


def _has_record(reader: Iterator[list[str]]) -> bool:
    """True when ``reader`` has a non-blank record left (one ``csv`` cannot parse counts)."""
    while True:
        try:
            if next(reader):
                return True
        except StopIteration:
            return False
        except csv.Error:
            return True


def peek_parquet(path: str) -> Peek:
    """The Parquet schema's column names and row count, from the footer only."""
    with open_input(path, compression=None) as f:
        try:
            meta = pq.ParquetFile(f)
            return Peek(tuple(meta.schema_arrow.names), meta.metadata.num_rows > 0)
        except pa.ArrowException as e:
            raise ValueError(f"{path}: not a readable Parquet file: {e}") from e
