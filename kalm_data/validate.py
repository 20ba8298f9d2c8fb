"""Validation of raw rows: one ``RawRow`` in, an ``InputPair`` or a ``RejectedRecord`` out.

Contract: never raises on row content. Every rejection names the field and what is wrong with it;
the rejected record carries the source file, row and the original row as JSON. Texts are
normalised (``kalm_data.text.normalize``) here, once, so every later stage sees the same strings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kalm_data import reasons
from kalm_data.records import TASK_TYPES, InputPair, RawRow, RejectedRecord
from kalm_data.text import derive_id, normalize

#: Default input column names per field, tried in order when the mapping names none.
DEFAULT_COLUMNS = {
    "id": ("id", "_id"),
    "query": ("query", "anchor", "question"),
    "positive": ("positive", "positives", "pos"),
    "negative": ("negative", "negatives", "neg"),
    "instruction": ("instruction",),
    "task_type": ("task_type",),
    "task": (),
}


class Invalid(ValueError):
    """A row-content problem: ``reason`` is a constant of ``kalm_data.reasons``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def _column(payload: dict, field: str, columns: dict[str, str]) -> str | None:
    if field in columns:
        return columns[field]
    return next((c for c in DEFAULT_COLUMNS[field] if c in payload), None)


def _text(value: Any, field: str, max_chars: int) -> str:
    if value is None:
        raise Invalid(reasons.NULL_FIELD, f"field '{field}' is null")
    if not isinstance(value, str):
        raise Invalid(
            reasons.WRONG_TYPE, f"field '{field}' is {type(value).__name__}, not a string"
        )
    if len(value) > max_chars:
        raise Invalid(
            reasons.TEXT_TOO_LONG,
            f"field '{field}' has {len(value)} characters (max_chars={max_chars})",
        )
    text = normalize(value)
    if not text:
        raise Invalid(reasons.BLANK_FIELD, f"field '{field}' is empty or blank")
    return text


def _texts(value: Any, field: str, max_chars: int) -> list[str]:
    """A string or a list of strings; an empty list is blank."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise Invalid(reasons.BLANK_FIELD, f"field '{field}' is an empty list")
    texts = [
        _text(v, f"{field}[{i}]" if isinstance(value, list) else field, max_chars)
        for i, v in enumerate(items)
    ]
    return list(dict.fromkeys(texts))


def _optional(payload: dict, field: str, columns: dict[str, str]) -> Any:
    col = _column(payload, field, columns)
    return None if col is None else payload.get(col)


def parse_pair(
    row: RawRow, columns: dict[str, str], max_chars: int, default_task_type: str = "retrieval"
) -> InputPair:
    """The ``InputPair`` of a parsed row; raises ``Invalid`` naming the field at fault."""
    payload = row.payload or {}
    values = {}
    for field in ("query", "positive"):
        col = _column(payload, field, columns)
        if col is None or col not in payload:
            wanted = col or "/".join(DEFAULT_COLUMNS[field])
            raise Invalid(reasons.MISSING_FIELD, f"field '{field}' (column '{wanted}') is missing")
        values[field] = payload[col]
    query = _text(values["query"], "query", max_chars)
    positives = _texts(values["positive"], "positive", max_chars)
    negatives_raw = _optional(payload, "negative", columns)
    negatives = [] if negatives_raw in (None, []) else _texts(negatives_raw, "negative", max_chars)
    if query in positives:
        raise Invalid(reasons.QUERY_IS_POSITIVE, "the query is identical to a positive")
    negatives = [n for n in negatives if n not in positives and n != query]

    task = row.task
    task_col = columns.get("task")
    if task_col is not None:
        if task_col not in payload:
            raise Invalid(reasons.MISSING_FIELD, f"field 'task' (column '{task_col}') is missing")
        task = _text(payload[task_col], "task", 200)
    task_type = _optional(payload, "task_type", columns) or default_task_type
    if task_type not in TASK_TYPES:
        raise Invalid(reasons.BAD_TASK_TYPE, f"task_type '{task_type}' is not one of {TASK_TYPES}")
    instruction = _optional(payload, "instruction", columns)
    instruction = None if instruction is None else _text(instruction, "instruction", max_chars)
    given_id = _optional(payload, "id", columns)
    if given_id is not None and not isinstance(given_id, (str, int)):
        raise Invalid(reasons.WRONG_TYPE, f"field 'id' is {type(given_id).__name__}, not a string")
    row_id = str(given_id).strip() if given_id is not None and str(given_id).strip() else None
    return InputPair(
        id=row_id or derive_id(task, query, positives),
        task=task,
        query=query,
        positives=positives,
        negatives=list(dict.fromkeys(negatives)),
        instruction=instruction,
        task_type=task_type,
        source_file=row.source_file,
        source_row=row.source_row,
    )


def raw_id(row: RawRow, columns: dict[str, str]) -> str | None:
    """The row's own id (its ``id`` column, a string or an integer), if it has one."""
    value = _optional(row.payload or {}, "id", columns)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value).strip() or None


def validate_row(
    row: RawRow,
    columns: dict[str, str],
    max_chars: int,
    too_long: Callable[[str], bool] | None = None,
) -> InputPair | RejectedRecord:
    """Validate one raw row. ``too_long(text)`` (optional) flags texts over the teacher's limit."""
    from kalm_data.stages.read import ReadErrors
    from kalm_data.stages.validate import Validate

    (parsed,) = ReadErrors().process(row)
    if isinstance(parsed, RejectedRecord):
        return parsed
    stage = Validate({row.source_file: columns}, max_chars, too_long=too_long)
    (result,) = stage.process(row)
    return result
