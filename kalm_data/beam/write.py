"""Writing stage: task shards and the rejected output, as explicit-schema Parquet in staging, and
the run's summed tallies (``kalm_data.beam.counts``) as ``_counts/tallies.json``."""

from __future__ import annotations

import apache_beam as beam

from kalm_data.beam.counts import TALLIES, SummedCounts, Tally, write_tallies
from kalm_data.harness.progress import flush, report
from kalm_data.records import RejectedRecord, TrainingExample
from kalm_data.text import hash_bucket
from kalm_data.writers.names import folder_name
from kalm_data.writers.parquet import part_name, parts_of, write_parts, write_rows


class WriteTaskShardsFn(beam.DoFn):
    """((task, part, n_parts), rows) -> ``<root>/data/<task>/part-<part>-of-<n_parts>.parquet``,
    rows sorted by id. ``WriteTaskShards`` deals a task's rows into its parts."""

    def __init__(self, root: str, progress: str | None = None):
        self.root = root
        self.progress = progress

    def process(self, item):
        (task, part, n_parts), rows = item
        report(self.progress, "write")  # the stage's first report: its start, for its timing
        rows = sorted(rows, key=lambda r: r["id"])
        path = part_name(f"{self.root}/data/{folder_name(task)}", part, n_parts)
        write_rows(TrainingExample, rows, path)
        report(self.progress, "write", rows=len(rows))
        flush(self.progress)
        yield path


class WriteTaskShards(beam.PTransform):
    """(task, row) -> each task's rows as ``ceil(rows / rows_per_part)`` parts, a row's part
    chosen by a hash of its id (``hash_bucket``): each part is grouped and written on its own,
    so no worker holds a whole task. A task of at most ``rows_per_part`` rows is one part, all
    its rows sorted by id; the Parquet files written out."""

    def __init__(self, root: str, rows_per_part: int, progress: str | None = None):
        super().__init__()
        self.rows_per_part = rows_per_part
        self.fn = WriteTaskShardsFn(root, progress)

    def expand(self, rows):
        per_part = self.rows_per_part

        def keyed(item, counts):
            task, row = item
            n = parts_of(counts[task], per_part)
            return (task, hash_bucket(row["id"], n), n), row

        counts = (
            rows
            | "TaskOf" >> beam.Map(lambda item: item[0])
            | "CountPerTask" >> beam.combiners.Count.PerElement()
        )
        return (
            rows
            | "KeyByPart" >> beam.Map(keyed, counts=beam.pvalue.AsDict(counts))
            | "GroupByPart" >> beam.GroupByKey()
            | "WritePart" >> beam.ParDo(self.fn)
        )


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
