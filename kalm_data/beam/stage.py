"""The one Beam shell of every ``Stage`` (``kalm_data.stage``).

``ApplyStage(stage)`` turns a PCollection of records into ``(kept, rejected)``: grouped stages
are keyed and grouped first; every element goes through ``stage.process``; rows are counted
in a ``Tally`` per element (``<stage>.in``, ``<stage>.out``, ``<stage>.rejected.<reason>``,
``kalm_data.beam.counts``) and in the progress display; and an element whose outputs do not
account for its input rows fails the run (a stage must never let a record vanish).
"""

from __future__ import annotations

from collections import Counter

import apache_beam as beam

from kalm_data.beam import SplitRejected
from kalm_data.beam.counts import tally
from kalm_data.harness.progress import flush, report
from kalm_data.records import RejectedRecord
from kalm_data.stage import Stage, rows_of


class LostRecords(RuntimeError):
    """A stage's outputs do not account for its input rows: a bug in the stage."""


class StageRunner:
    """Runs a stage on one element at a time: counts, checks and reports (module docstring).
    ``StageFn`` uses it; so does a step that runs a stage inside a larger DoFn (mining)."""

    def __init__(self, stage: Stage, progress: str | None = None):
        self.stage = stage
        self.progress = progress
        self.counts: Counter = Counter()

    def setup(self) -> None:
        self.stage.setup()

    def _rows_in(self, element) -> int:
        if self.stage.grouped:
            return sum(rows_of(r) for r in element[1])
        return rows_of(element)

    def __call__(self, element) -> list:
        """The stage's outputs for ``element``; ``LostRecords`` if rows do not add up. Its
        rows are added to the counts ``drain`` hands out."""
        name, expected = self.stage.name, self._rows_in(element)
        outputs = list(self.stage.process(element))
        kept = rejected = 0
        for out in outputs:
            if isinstance(out, RejectedRecord):
                rejected += out.rows
                self.counts[f"{name}.rejected.{out.reason}"] += out.rows
            else:
                kept += rows_of(out)
        if kept + rejected != expected:
            raise LostRecords(
                f"stage {name!r} was given {expected} row(s) and accounted for "
                f"{kept + rejected} ({kept} kept, {rejected} rejected)"
            )
        self.counts[f"{name}.in"] += expected
        self.counts[f"{name}.out"] += kept
        report(self.progress, name, kept=kept, rejected=rejected)
        return outputs

    def drain(self) -> dict[str, int]:
        """The rows counted since the last call: ``<stage>.in``, ``.out``,
        ``.rejected.<reason>``."""
        counts, self.counts = dict(self.counts), Counter()
        return counts


class StageFn(beam.DoFn):
    """The DoFn of ``ApplyStage``: one ``StageRunner`` per worker."""

    def __init__(self, stage: Stage, progress: str | None = None):
        self.runner = StageRunner(stage, progress)

    def setup(self):
        self.runner.setup()

    def process(self, element):
        yield from self.runner(element)
        yield tally(self.runner.drain())

    def finish_bundle(self):
        flush(self.runner.progress)


class ApplyStage(beam.PTransform):
    """records -> (kept records, ``RejectedRecord``s) through ``stage``."""

    def __init__(self, stage: Stage, progress: str | None = None):
        super().__init__()
        self.stage = stage
        self.progress = progress

    def expand(self, records):
        if self.stage.grouped:
            records = (
                records
                | "Key" >> beam.Map(lambda r, stage: (stage.key(r), r), self.stage)
                | "Group" >> beam.GroupByKey()
                | "Materialise" >> beam.MapTuple(lambda k, rs: (k, list(rs)))
            )
        return (
            records
            | "Process" >> beam.ParDo(StageFn(self.stage, self.progress))
            | "Split" >> SplitRejected()
        )
