"""Per-positive verdicts applied to an example: which positives and source rows stay.

Contract (pure):
- A positive that fails the filter leaves the example. A source row leaves (and is rejected)
  only when every positive it carries failed; a row that also carries a passing positive stays,
  its failing positives dropped (and counted in ``Ranked.dropped``). The example stays while at
  least one positive passes; its rows are then the rows still carrying a positive.
- ``row_example`` is one source row as an ``Example`` of its own (its id, its row, its
  positives): what its rejection records.
- The candidates of a narrowed example are unchanged: a dropped positive never becomes one of
  its negatives (it may be a hard but correct answer the teacher misjudged).
"""

from __future__ import annotations

from dataclasses import replace

from kalm_data.mining.rank import Ranked
from kalm_data.records import Example


def rows_kept(example: Example, passed: list[bool]) -> list[bool]:
    """Per source row: True while one of the positives it carries passed."""
    return [any(passed[i] for i in row) for row in example.row_positives]


def narrow_example(example: Example, passed: list[bool]) -> Example:
    """``example`` with only its passing positives and the rows still carrying one."""
    keep_pos = [i for i, ok in enumerate(passed) if ok]
    new_index = {old: new for new, old in enumerate(keep_pos)}
    rows = [j for j, ok in enumerate(rows_kept(example, passed)) if ok]
    return example.model_copy(
        update={
            "positives": [example.positives[i] for i in keep_pos],
            "source_rows": [example.source_rows[j] for j in rows],
            "source_ids": [example.source_ids[j] for j in rows],
            "row_positives": [
                [new_index[i] for i in example.row_positives[j] if passed[i]] for j in rows
            ],
        }
    )


def row_example(example: Example, j: int) -> Example:
    """Source row ``j`` (a position in ``source_rows``) as an example of its own."""
    carried = example.row_positives[j]
    return example.model_copy(
        update={
            "id": example.source_ids[j],
            "positives": [example.positives[i] for i in carried],
            "source_rows": [example.source_rows[j]],
            "source_ids": [example.source_ids[j]],
            "row_positives": [list(range(len(carried)))],
        }
    )


def narrow_ranked(ranked: Ranked, passed: list[bool]) -> Ranked:
    """``ranked`` restricted to its passing positives (at least one must pass)."""
    if not any(passed):
        raise ValueError("no positive passed: the example leaves whole")
    keep_pos = [i for i, ok in enumerate(passed) if ok]
    return replace(
        ranked,
        example=narrow_example(ranked.example, passed),
        positive_ranks=tuple(ranked.positive_ranks[i] for i in keep_pos),
        positive_ids=[ranked.positive_ids[i] for i in keep_pos],
        positive_scores=ranked.positive_scores[keep_pos],
        dropped=ranked.dropped + len(passed) - len(keep_pos),
    )
