"""Writing stage: task shards and the rejected output, as explicit-schema Parquet in staging, and
the run's summed tallies (``kalm_data.beam.counts``) as ``_counts/tallies.json``."""

from __future__ import annotations

import apache_beam as beam

from kalm_data.beam.counts import TALLIES, SummedCounts, Tally, write_tallies
from kalm_data.harness.progress import flush, report
from kalm_data.records import RejectedRecord, TrainingExample
from kalm_data.writers.names import folder_name
from kalm_data.writers.parquet import write_parts


class WriteTaskShardsFn(beam.DoFn):
    """(task, rows) -> ``<root>/data/<task>/part-*.parquet``, rows sorted by id. Rows come one
    per element from mining: ``WriteTaskShards`` groups them by task first."""

    def __init__(self, root: str, rows_per_part: int, progress: str | None = None):
        self.root = root
        self.rows_per_part = rows_per_part
        self.progress = progress

    def process(self, item):
        task, rows = item
        if not rows:
            return
        report(self.progress, "write")  # the stage's first report: its start, for its timing
        rows = sorted(rows, key=lambda r: r["id"])
        yield from write_parts(
            TrainingExample, rows, f"{self.root}/data/{folder_name(task)}", self.rows_per_part
        )
        report(self.progress, "write", rows=len(rows))
        flush(self.progress)


class WriteTaskShards(beam.PTransform):
    """(task, row) -> ``WriteTaskShardsFn`` on each task's rows: the Parquet files written."""

    def __init__(self, root: str, rows_per_part: int, progress: str | None = None):
        super().__init__()
        self.fn = WriteTaskShardsFn(root, rows_per_part, progress)

    def expand(self, rows):
        return rows | "GroupByTask" >> beam.GroupByKey() | "WriteTask" >> beam.ParDo(self.fn)


def _write_rejected(item, root: str, rows_per_part: int):
    stage, records = item
    rows = sorted(
        (r.model_dump() for r in records),
        key=lambda r: (r["task"], r["source_file"], r["source_row"], r["id"] or ""),
    )
    yield from write_parts(
        RejectedRecord, rows, f"{root}/rejected/{folder_name(stage)}", rows_per_part
    )


class WriteRejected(beam.PTransform):
    """Reports -> ``<root>/rejected/<stage>/part-*.parquet`` for the ``RejectedRecord``s and
    ``<root>/_counts/tallies.json`` for the ``Tally``s, summed; the files written out."""

    def __init__(self, root: str, rows_per_part: int):
        super().__init__()
        self.root = root
        self.rows_per_part = rows_per_part

    def expand(self, reports):
        parts = (
            reports
            | "OnlyRejected" >> beam.Filter(lambda r: not isinstance(r, Tally))
            | "KeyByStage" >> beam.Map(lambda r: (r.stage, r))
            | "GroupByStage" >> beam.GroupByKey()
            | "WriteStage" >> beam.FlatMap(_write_rejected, self.root, self.rows_per_part)
        )
        tallies = (
            reports
            | "SumTallies" >> SummedCounts()
            | "WriteTallies" >> beam.Map(write_tallies, f"{self.root}/{TALLIES}")
        )
        return (parts, tallies) | "RejectedFiles" >> beam.Flatten()
