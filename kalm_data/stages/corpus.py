"""``corpus``: rows of the shared candidate corpus become ``(text key, text)``; unreadable rows
and rows without a text leave (counted apart from the examples' funnel)."""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum

from kalm_data import reasons
from kalm_data.records import RawRow
from kalm_data.stage import Stage


class Reason(str, Enum):
    INVALID_UTF8 = reasons.INVALID_UTF8
    MALFORMED_JSON = reasons.MALFORMED_JSON
    NOT_AN_OBJECT = reasons.NOT_AN_OBJECT
    MALFORMED_CSV = reasons.MALFORMED_CSV
    UNREADABLE = "unreadable"
    BLANK_FIELD = reasons.BLANK_FIELD


class CorpusTexts(Stage):
    """Settings: the text column of each corpus file (default ``text``)."""

    name = reasons.CORPUS
    Reason = Reason

    def __init__(self, column_by_file: dict[str, str]):
        self.column_by_file = column_by_file

    def process(self, row: RawRow) -> Iterator[tuple[str, str]]:
        from kalm_data.text import normalize, text_key

        if row.payload is None:
            reason, _, detail = (row.error or "unreadable:").partition(":")
            why = Reason(reason) if reason in Reason._value2member_map_ else Reason.UNREADABLE
            yield self.reject(row, why, detail.strip())
            return
        column = self.column_by_file.get(row.source_file, "text")
        value = row.payload.get(column)
        text = normalize(value) if isinstance(value, str) else ""
        if not text:
            detail = f"field '{column}' is missing, not a string, or blank"
            yield self.reject(row, Reason.BLANK_FIELD, detail)
            return
        yield text_key(text), text
