"""Reading inputs into ``RawRow``s, one file per element, then spread across workers."""

from __future__ import annotations

import logging

import apache_beam as beam

from kalm_data.inputs import InputSpec

log = logging.getLogger(__name__)


def _read(spec_json: str, progress: str | None, names: dict[str, str]):
    from kalm_data.harness.progress import flush, report
    from kalm_data.readers import read_rows

    spec = InputSpec.model_validate_json(spec_json)
    n = 0
    name = names.get(spec.path, spec.path)
    for n, row in enumerate(read_rows(spec), 1):
        if name != spec.path:
            row = row.model_copy(update={"source_file": name})
        if n % 1000 == 0:
            report(progress, "read", rows=1000)
        if n % 100_000 == 0:
            log.info("read %s: %d rows so far", spec.path, n)
        yield row
    report(progress, "read", rows=n % 1000)
    flush(progress)
    log.info("read %s: %d rows", spec.path, n)


class ReadInputs(beam.PTransform):
    """``InputSpec``s -> every row of every input as a ``RawRow`` (unparseable ones included)."""

    def __init__(
        self,
        specs: list[InputSpec],
        progress: str | None = None,
        names: dict[str, str] | None = None,
    ):
        super().__init__()
        self.specs = [s.model_dump_json() for s in specs]
        self.names = names or {}  # input path -> the name rows record (kalm_data.published)
        self.progress = progress  # progress folder (kalm_data.harness.progress), or None

    def expand(self, pbegin):
        return (
            pbegin
            | "Specs" >> beam.Create(self.specs)
            | "ReadRows" >> beam.FlatMap(_read, self.progress, self.names)
            | "Spread" >> beam.Reshuffle()
        )
