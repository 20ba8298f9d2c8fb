"""Writers of one task file: JSON Lines or Parquet, streamed, never holding a task in memory.

Contract: ``open_task_file(path, file_format, schema)`` returns a writer with ``write(records)``
and ``close()``; the file is created on the first ``write`` (a task with no record leaves no
file: ``written`` stays False). JSONL: one ``json.dumps`` object per line, UTF-8, non-ASCII kept
as is, keys in the records' order. Parquet: the given explicit schema (never inferred), in row
groups of ``ROW_GROUP`` records. These write into the export's staging folder; making the files
appear atomically in OUT is ``kalm_data.export.output``'s job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

#: Records per Parquet row group.
ROW_GROUP = 1000


class TaskFile(Protocol):
    written: bool

    def write(self, records: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


class JsonlFile:
    """A JSON Lines task file."""

    def __init__(self, path: Path):
        self.path = path
        self.written = False
        self._f = None

    def write(self, records: list[dict[str, Any]]) -> None:
        if self._f is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = self.path.open("w", encoding="utf-8", newline="\n")
            self.written = True
        for record in records:
            self._f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


class ParquetFile:
    """A Parquet task file with an explicit schema."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = path
        self.schema = schema
        self.written = False
        self._buffer: list[dict[str, Any]] = []
        self._writer = None

    def write(self, records: list[dict[str, Any]]) -> None:
        self._buffer.extend(records)
        if len(self._buffer) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._buffer:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, self.schema)
            self.written = True
        self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=self.schema))
        self._buffer = []

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()


def open_task_file(path: Path, file_format: str, schema: pa.Schema | None) -> TaskFile:
    """A writer of ``file_format`` ("jsonl" or "parquet", which needs ``schema``) at ``path``."""
    if file_format == "jsonl":
        return JsonlFile(path)
    if file_format == "parquet":
        if schema is None:
            raise ValueError("a Parquet task file needs an explicit schema")
        return ParquetFile(path, schema)
    raise ValueError(f"unknown file format {file_format!r}")
