"""``dedup``: rows repeating an id or a (query, positive) leave; rows sharing a query merge into
one ``Example`` (core: ``kalm_data.dedup``). Two grouped stages of the one funnel stage."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from enum import Enum

from kalm_data import reasons
from kalm_data.records import Example, InputPair
from kalm_data.stage import Stage


class Reason(str, Enum):
    DUPLICATE = reasons.DUPLICATE
    DUPLICATE_ID = reasons.DUPLICATE_ID


class DedupIds(Stage):
    """Per (task, id): the first row (by file, row) is kept; see ``dedup.resolve_ids``."""

    name = reasons.DEDUP
    Reason = Reason
    grouped = True

    def key(self, pair: InputPair) -> Hashable:
        return (pair.task, pair.id)

    def process(self, group) -> Iterator:
        from kalm_data.dedup import resolve_ids

        kept, rejected = resolve_ids(group[1])
        yield from kept
        yield from rejected


class MergeByQuery(Stage):
    """Per (task, query): one ``Example``; rows adding nothing are duplicates."""

    name = "merge"
    Reason = Reason
    grouped = True

    def key(self, pair: InputPair) -> Hashable:
        return (pair.task, pair.query)

    def process(self, group) -> Iterator[Example]:
        from kalm_data.dedup import merge_by_query

        example, rejected = merge_by_query(group[1])
        yield example
        yield from rejected
