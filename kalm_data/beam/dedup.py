"""Dedup stage: drop rows repeating an id or a (query, positive), merge rows sharing a query."""

from __future__ import annotations

import apache_beam as beam

from kalm_data.beam import SplitRejected
from kalm_data.dedup import merge_by_query, resolve_ids


def _resolve(item):
    _, pairs = item
    kept, rejected = resolve_ids(list(pairs))
    yield from kept
    yield from rejected


def _merge(item):
    _, pairs = item
    example, rejected = merge_by_query(list(pairs))
    yield example
    yield from rejected


class DedupAndMerge(beam.PTransform):
    """``InputPair``s -> ``Example``s (main output) and rejected duplicates (``rejected``)."""

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
            | "Merge" >> beam.FlatMap(_merge)
            | "SplitMerged" >> SplitRejected()
        )
        rejected = (dup_ids, dup_rows) | "Rejected" >> beam.Flatten()
        return examples, rejected
