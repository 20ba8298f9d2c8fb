"""Validation stage: ``RawRow`` -> ``InputPair`` or ``RejectedRecord`` (see ``SplitRejected``)."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from kalm_data.beam import NAMESPACE
from kalm_data.harness.progress import flush, report
from kalm_data.records import RejectedRecord
from kalm_data.validate import validate_row


class ValidateRowsFn(beam.DoFn):
    """Validates rows; with ``overlong="reject"`` loads the teacher's tokenizer in ``setup()``."""

    def __init__(
        self,
        columns_by_file: dict[str, dict[str, str]],
        max_chars: int,
        overlong: str,
        teacher: str,
        progress: str | None = None,
    ):
        self.columns_by_file = columns_by_file
        self.max_chars = max_chars
        self.overlong = overlong
        self.teacher = teacher
        self.progress = progress
        self._too_long = None

    def setup(self):
        if self.overlong == "reject":
            from kalm_data.embed.teacher import Teacher

            self._too_long = Teacher(self.teacher).too_long

    def process(self, row):
        columns = self.columns_by_file.get(row.source_file, {})
        result = validate_row(row, columns, self.max_chars, self._too_long)
        if isinstance(result, RejectedRecord):
            Metrics.counter(NAMESPACE, f"rejected_{result.stage}_{result.reason}").inc()
            report(self.progress, "validate", rejected=1)
        else:
            Metrics.counter(NAMESPACE, "rows_valid").inc()
            report(self.progress, "validate", kept=1)
        yield result

    def finish_bundle(self):
        flush(self.progress)
