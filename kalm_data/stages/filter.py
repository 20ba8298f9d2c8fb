"""``filter``: the ranking-consistency filter, a stage of its own, judging every positive.

Input: one ``Ranked`` example (``kalm_data.mining.rank``: per positive, its score and rank for
the query and the query's rank for it; the score at rank k). The rule
(``kalm_data.mining.consistency``: ``kalm``, ``mutual`` or ``none``, with its settings in
``MiningParams``) judges each positive on its own:

- every positive passes: the ``Ranked`` comes back unchanged;
- some fail: each source row whose positives all failed is rejected (reason
  ``inconsistent_ranking``, one ``RejectedRecord`` per row, ``rows`` 1, carrying that row's
  positives with their scores and ranks); the example, narrowed to its passing positives and the
  rows still carrying one, comes back while any positive passes (``kalm_data.mining.narrow``:
  a row carrying a passing and a failing positive stays; the failing one is dropped and counted
  in ``Ranked.dropped``).

Kept rows plus rejected rows always equal the example's source rows. It runs inside the
per-task mining step, because ranks only exist against a task's pool, but through the same
counting shell as every stage (``kalm_data.beam.stage.StageRunner``).
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum

from kalm_data import reasons
from kalm_data.mining import consistency
from kalm_data.mining.narrow import narrow_ranked, row_example, rows_kept
from kalm_data.mining.params import MiningParams
from kalm_data.mining.rank import Ranked
from kalm_data.records import RejectedRecord
from kalm_data.stage import Stage


class Reason(str, Enum):
    INCONSISTENT_RANKING = reasons.INCONSISTENT_RANKING


class RankingConsistency(Stage):
    """Settings: ``MiningParams`` (``filter_rule``, ``filter_k``, ``filter_query_k``,
    ``filter_margin``)."""

    name = reasons.FILTER
    Reason = Reason

    def __init__(self, params: MiningParams):
        self.params = params

    def _passes(self, ranks: consistency.Ranks) -> bool:
        p = self.params
        return consistency.keep(p.filter_rule, ranks, p.filter_k, p.filter_query_k, p.filter_margin)

    def process(self, ranked: Ranked) -> Iterator:
        passed = [self._passes(r) for r in ranked.positive_ranks]
        if all(passed):
            yield ranked
            return
        for j, kept in enumerate(rows_kept(ranked.example, passed)):
            if not kept:
                yield self._reject_row(ranked, j)
        if any(passed):
            yield narrow_ranked(ranked, passed)

    def _reject_row(self, ranked: Ranked, j: int) -> RejectedRecord:
        """The rejection of source row ``j``, all of whose positives failed."""
        p, carried = self.params, ranked.example.row_positives[j]
        best = max(carried, key=lambda i: (ranked.positive_scores[i], -i))
        ranks = ranked.positive_ranks[best]
        why = consistency.explain(
            p.filter_rule, ranks, p.filter_k, p.filter_query_k, p.filter_margin
        )
        if len(carried) > 1:
            why = f"all {len(carried)} positives of the row fail; the best: {why}"
        return self.reject(
            row_example(ranked.example, j),
            Reason.INCONSISTENT_RANKING,
            why,
            example_id=ranked.example.id,
            positive_scores=[float(ranked.positive_scores[i]) for i in carried],
            positive_ranks=[ranked.positive_ranks[i].positive_rank for i in carried],
            query_ranks=[ranked.positive_ranks[i].query_rank for i in carried],
            positive_rank=ranks.positive_rank,
            query_rank=ranks.query_rank,
            score_at_k=ranks.score_at_k,
        )
