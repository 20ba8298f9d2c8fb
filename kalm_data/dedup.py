"""Exact-duplicate removal and merging of rows that share a query, within one task.

Contract (pure; input order does not matter, rows are sorted by (file, row) first):
- ``resolve_ids``: rows sharing an id: the first is kept; a later one is ``duplicate`` when its
  content is the same, ``duplicate_id`` when it differs.
- ``merge_by_query``: rows sharing a normalised query become one ``Example`` whose positives and
  given negatives are the ordered unions; a row that adds no new positive is ``duplicate``.
  The example's ``row_positives`` says which positives each kept row carries (a row that only
  added negatives still carries its positives, first brought by an earlier row), so the
  filter can judge and reject per positive and per row.
Every input row ends in exactly one output: kept (listed in the example's ``source_rows``) or
rejected.
"""

from __future__ import annotations

import json

from kalm_data import reasons
from kalm_data.records import Example, InputPair, RejectedRecord


def _order(pairs: list[InputPair]) -> list[InputPair]:
    return sorted(pairs, key=lambda p: (p.source_file, p.source_row))


def _reject(pair: InputPair, reason: str, detail: str) -> RejectedRecord:
    from kalm_data.stage import rejected_record

    return rejected_record(reasons.DEDUP, pair, reason, detail)


def _content(pair: InputPair) -> tuple:
    return (pair.query, tuple(pair.positives), tuple(pair.negatives), pair.instruction)


def resolve_ids(pairs: list[InputPair]) -> tuple[list[InputPair], list[RejectedRecord]]:
    """Keep the first row of each id; reject the rest (see module docstring)."""
    first, *rest = _order(pairs)
    rejected = []
    for pair in rest:
        where = f"{first.source_file}:{first.source_row}"
        if _content(pair) == _content(first):
            rejected.append(_reject(pair, reasons.DUPLICATE, f"same row as {where}"))
        else:
            rejected.append(
                _reject(pair, reasons.DUPLICATE_ID, f"id '{pair.id}' already used by {where}")
            )
    return [first], rejected


def merge_by_query(pairs: list[InputPair]) -> tuple[Example, list[RejectedRecord]]:
    """One example from rows that share task and query; rows adding nothing are rejected."""
    ordered = _order(pairs)
    head = ordered[0]
    positives: dict[str, None] = {}
    negatives: dict[str, None] = {}
    kept: list[InputPair] = []
    rejected: list[RejectedRecord] = []
    for pair in ordered:
        new_pos = [p for p in pair.positives if p not in positives]
        new_neg = [n for n in pair.negatives if n not in negatives]
        if kept and not new_pos and not new_neg:
            detail = f"same query and positive(s) as {head.source_file}:{head.source_row}"
            rejected.append(_reject(pair, reasons.DUPLICATE, detail))
            continue
        kept.append(pair)
        positives.update(dict.fromkeys(new_pos))
        negatives.update(dict.fromkeys(new_neg))
    example = Example(
        id=head.id,
        task=head.task,
        task_type=head.task_type,
        instruction=head.instruction,
        query=head.query,
        positives=list(positives),
        negatives=[n for n in negatives if n not in positives],
        source_file=head.source_file,
        source_rows=[p.source_row for p in kept],
        source_ids=[p.id for p in kept],
        row_positives=[_indices(p.positives, list(positives)) for p in kept],
        persona_id=head.persona_id,
        generator=head.generator,
    )
    return example, rejected


def _indices(texts: list[str], positives: list[str]) -> list[int]:
    """Indices into ``positives`` of ``texts`` (each in it), in the example's order."""
    where = {p: i for i, p in enumerate(positives)}
    return sorted({where[t] for t in texts})


def example_json(example: Example) -> str:
    """The example as compact JSON, for a rejected record."""
    return json.dumps(example.model_dump(), ensure_ascii=False)
