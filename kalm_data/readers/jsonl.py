"""JSON Lines reader: one ``RawRow`` per non-blank line, streamed.

Contract: ``source_row`` is the 1-based physical line number. Blank (whitespace-only) lines are
skipped. A bad line yields ``payload=None`` with ``error`` starting ``invalid_utf8``,
``malformed_json`` or ``not_an_object``, and ``raw`` = the line decoded with ``errors='replace'``.
Lines are split on ``\\n`` only, so U+2028 and friends inside strings never break a row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from kalm_data.readers.common import clean_values, error_row, open_input
from kalm_data.reasons import INVALID_UTF8, MALFORMED_JSON, NOT_AN_OBJECT
from kalm_data.records import RawRow

_BOM = "\ufeff"
_JSON_TYPES = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


def read_jsonl(path: str, task: str) -> Iterator[RawRow]:
    """Yield every non-blank line of the JSONL file at ``path`` (plain or compressed)."""
    with open_input(path) as f:
        for line_no, line in enumerate(f, start=1):
            if line.strip():
                yield parse_line(path, task, line_no, line)


def parse_line(path: str, task: str, line_no: int, line: bytes) -> RawRow:
    """One line -> a ``RawRow`` with a dict payload, or an error row. Never raises."""
    line = line.rstrip(b"\r\n")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        return error_row(path, task, line_no, INVALID_UTF8, str(e), line)
    if line_no == 1:
        text = text.removeprefix(_BOM)
    try:
        value = json.loads(text)
    # ValueError covers JSONDecodeError and over-long integers; RecursionError deep nesting.
    except (ValueError, RecursionError) as e:
        return error_row(path, task, line_no, MALFORMED_JSON, str(e), text)
    if not isinstance(value, dict):
        kind = "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)
        return error_row(path, task, line_no, NOT_AN_OBJECT, f"got a JSON {kind}", text)
    return RawRow(source_file=path, source_row=line_no, task=task, payload=clean_values(value))
