"""``read``: rows a reader could not parse leave here, with the reader's reason."""

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


class ReadErrors(Stage):
    """``RawRow``s with a payload pass; the others are rejected with their ``error``'s reason."""

    name = reasons.READ
    Reason = Reason

    def process(self, row: RawRow) -> Iterator[RawRow]:
        if row.payload is not None:
            yield row
            return
        reason, _, detail = (row.error or "unreadable: no payload").partition(":")
        try:
            why = Reason(reason.strip())
        except ValueError:
            why, detail = Reason.UNREADABLE, row.error or "no payload"
        yield self.reject(row, why, detail.strip())
