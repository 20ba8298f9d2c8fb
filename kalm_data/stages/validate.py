"""``validate``: a parsed row becomes an ``InputPair``, or is rejected naming the field at fault
(core: ``kalm_data.validate``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import Enum

from kalm_data import reasons
from kalm_data.records import InputPair, RawRow
from kalm_data.stage import Stage


class Reason(str, Enum):
    MISSING_FIELD = reasons.MISSING_FIELD
    NULL_FIELD = reasons.NULL_FIELD
    BLANK_FIELD = reasons.BLANK_FIELD
    WRONG_TYPE = reasons.WRONG_TYPE
    TEXT_TOO_LONG = reasons.TEXT_TOO_LONG
    OVER_TEACHER_LIMIT = reasons.OVER_TEACHER_LIMIT
    QUERY_IS_POSITIVE = reasons.QUERY_IS_POSITIVE
    BAD_TASK_TYPE = reasons.BAD_TASK_TYPE


class Validate(Stage):
    """Settings: the column mapping per input file, ``max_chars``, and with
    ``overlong="reject"`` the teacher whose tokenizer measures texts (loaded in ``setup``), or
    a ``too_long(text)`` function given directly."""

    name = reasons.VALIDATE
    Reason = Reason

    def __init__(
        self,
        columns_by_file: dict[str, dict[str, str]],
        max_chars: int,
        overlong: str = "truncate",
        teacher: str | None = None,
        too_long: Callable[[str], bool] | None = None,
    ):
        self.columns_by_file = columns_by_file
        self.max_chars = max_chars
        self.overlong = overlong
        self.teacher = teacher
        self._too_long = too_long  # given, or the teacher's tokenizer loaded in setup

    def setup(self) -> None:
        if self.overlong == "reject" and self._too_long is None:
            from kalm_data.embed.teacher import Teacher

            self._too_long = Teacher(self.teacher).too_long

    def process(self, row: RawRow) -> Iterator[InputPair]:
        from kalm_data.validate import Invalid, parse_pair, raw_id

        columns = self.columns_by_file.get(row.source_file, {})
        try:
            pair = parse_pair(row, columns, self.max_chars)
        except Invalid as e:
            yield self.reject(row, Reason(e.reason), str(e), id=raw_id(row, columns))
            return
        if self._too_long is not None:
            for field, text in [("query", pair.query), *(("positive", p) for p in pair.positives)]:
                if self._too_long(text):
                    detail = f"field '{field}' is longer than the teacher's max tokens"
                    detail += " (overlong=reject)"
                    yield self.reject(row, Reason.OVER_TEACHER_LIMIT, detail, id=pair.id)
                    return
        yield pair
