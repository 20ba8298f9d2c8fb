"""Dedup stage: drop rows repeating an id or a (query, positive), merge rows sharing a query."""

from __future__ import annotations

import apache_beam as beam

from kalm_data.beam import SplitRejected
from kalm_data.dedup import merge_by_query, resolve_ids
from kalm_data.harness.progress import report


def _resolve(item):
    _, pairs = item
    kept, rejected = resolve_ids(list(pairs))
    yield from kept
    yield from rejected


def _merge(item, progress: str | None):
    _, pairs = item
    example, rejected = merge_by_query(list(pairs))
    report(progress, "dedup", examples=1)
    yield example
    yield from rejected


class DedupAndMerge(beam.PTransform):
    """``InputPair``s -> ``Example``s (main output) and rejected duplicates (``rejected``)."""

    def __init__(self, progress: str | None = None):
        super().__init__()
        self.progress = progress  # progress folder (kalm_data.harness.progress), or None

    def expand(self, pairs):
        unique, dup_ids = (
            pairs
            | "KeyById" >> beam.Map(lambda p: ((p.task, p.id), p))
            | "GroupById" >> beam.GroupByKey()
            | "ResolveIds" >> beam.FlatMap(_resolve)
            | "SplitIds" >> SplitRejected()
        )
        examples, dup_rows = (
            unique
            | "KeyByQuery" >> beam.Map(lambda p: ((p.task, p.query), p))
            | "GroupByQuery" >> beam.GroupByKey()
            | "Merge" >> beam.FlatMap(_merge, self.progress)
            | "SplitMerged" >> SplitRejected()
        )
        rejected = (dup_ids, dup_rows) | "Rejected" >> beam.Flatten()
        return examples, rejected
