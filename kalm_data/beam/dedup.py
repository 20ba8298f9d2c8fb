"""Dedup stage: drop rows repeating an id or a (query, positive), merge rows sharing a query."""

from __future__ import annotations

import apache_beam as beam

from kalm_data.beam import REJECTED
from kalm_data.dedup import merge_by_query, resolve_ids


def _resolve(item):
    _, pairs = item
    kept, rejected = resolve_ids(list(pairs))
    yield from kept
    for r in rejected:
        yield beam.pvalue.TaggedOutput(REJECTED, r)


def _merge(item):
    _, pairs = item
    example, rejected = merge_by_query(list(pairs))
    yield example
    for r in rejected:
        yield beam.pvalue.TaggedOutput(REJECTED, r)


class DedupAndMerge(beam.PTransform):
    """``InputPair``s -> ``Example``s (main output) and rejected duplicates (``rejected``)."""

    def expand(self, pairs):
        by_id = (
            pairs
            | "KeyById" >> beam.Map(lambda p: ((p.task, p.id), p))
            | "GroupById" >> beam.GroupByKey()
            | "ResolveIds" >> beam.FlatMap(_resolve).with_outputs(REJECTED, main="pairs")
        )
        merged = (
            by_id.pairs
            | "KeyByQuery" >> beam.Map(lambda p: ((p.task, p.query), p))
            | "GroupByQuery" >> beam.GroupByKey()
            | "Merge" >> beam.FlatMap(_merge).with_outputs(REJECTED, main="examples")
        )
        rejected = (by_id[REJECTED], merged[REJECTED]) | "Rejected" >> beam.Flatten()
        return merged.examples, rejected
