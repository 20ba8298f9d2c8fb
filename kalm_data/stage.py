"""The stage contract: every step that keeps or rejects records is a ``Stage``.

A stage is a pure core: no Beam, no I/O. ``process`` takes one record (or, for a ``grouped``
stage, one ``(key, records)`` group made by ``key``) and yields each record it keeps or makes,
and a ``RejectedRecord`` (made with ``self.reject``) for each one it drops, with a reason from
its own ``Reason`` enum. It must account for every input row: the rows of its outputs (an
``InputPair`` or a raw row is 1, an ``Example`` its ``source_rows``, a rejection its ``rows``)
add up to the rows it was given; the Beam shell (``kalm_data.beam.stage.ApplyStage``) checks
that on every element, counts rows in, out and rejected per reason, reports progress and
splits the rejections off to the shared rejected output.

Adding a stage: a subclass with ``name``, ``Reason`` and ``process`` (its settings are its
constructor's arguments), and its tests. ``tests/test_stage_contract.py`` has a toy example.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator
from enum import Enum
from typing import Any, ClassVar

from kalm_data.records import Example, InputPair, RawRow, RejectedRecord


class Stage:
    """Base class of the stages (see module docstring)."""

    #: Counter, progress and rejected/ folder name; also the manifest's stage name.
    name: ClassVar[str]
    #: Every reason this stage may give (``str`` values).
    Reason: ClassVar[type[Enum]]
    #: True: ``process`` receives ``(key, [records])`` groups made by ``key``.
    grouped: ClassVar[bool] = False

    def setup(self) -> None:
        """Load what the stage needs (a model, a tokenizer): once per worker, before use."""

    def key(self, record: Any) -> Hashable:
        """The group of ``record`` (grouped stages only)."""
        raise NotImplementedError(f"{type(self).__name__} is not a grouped stage")

    def process(self, item: Any) -> Iterator[Any]:
        """Kept or new records, and ``RejectedRecord``s (see module docstring)."""
        raise NotImplementedError

    def reject(self, record: Any, reason: Enum, detail: str, **extra: Any) -> RejectedRecord:
        """The rejection of ``record`` (a raw row, an input pair or an example) by this stage.

        ``detail`` is prefixed with the record's ``file:row``; ``extra`` (scores, ranks) is
        added to the record's JSON so the rejected output shows why.
        """
        if not isinstance(reason, self.Reason):
            raise ValueError(f"{reason!r} is not a reason of stage {self.name!r}")
        return rejected_record(self.name, record, reason.value, detail, **extra)


def rows_of(record: Any) -> int:
    """How many input rows ``record`` stands for."""
    if isinstance(record, RejectedRecord):
        return record.rows
    rows = getattr(record, "source_rows", None)
    return len(rows) if rows is not None else 1


def _record_json(record: Any, extra: dict[str, Any]) -> str:
    if isinstance(record, RawRow):
        if record.payload is None:
            return record.raw or ""
        return json.dumps(record.payload, ensure_ascii=False, default=str)
    if not extra:
        return record.model_dump_json()
    return json.dumps({**record.model_dump(), **extra}, ensure_ascii=False, default=str)


def rejected_record(stage: str, record: Any, reason: str, detail: str, **extra) -> RejectedRecord:
    """The one place a ``RejectedRecord`` is built: provenance taken from ``record``."""
    if isinstance(record, Example):
        row, rows = record.source_rows[0], len(record.source_rows)
    elif isinstance(record, (RawRow, InputPair)):
        row, rows = record.source_row, 1
    else:
        raise TypeError(f"cannot reject a {type(record).__name__}: no provenance")
    given_id = extra.pop("id", None)
    return RejectedRecord(
        id=given_id if given_id is not None else getattr(record, "id", None),
        task=record.task,
        stage=stage,
        reason=reason,
        detail=f"{record.source_file}:{row}: {detail}",
        source_file=record.source_file,
        source_row=row,
        rows=rows,
        record=_record_json(record, extra),
    )
