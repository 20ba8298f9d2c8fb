"""``filter``: the ranking-consistency filter, a stage of its own.

Input: one ``Ranked`` example (``kalm_data.mining.rank``: its positive's score and rank for its
query, the query's rank for its positive, the score at rank k). The rule
(``kalm_data.mining.consistency``: ``kalm``, ``mutual`` or ``none``, with its settings in
``MiningParams``) keeps it, or rejects it with the scores and ranks that condemned it. It runs
inside the per-task mining step, because ranks only exist against a task's pool, but through
the same counting shell as every stage (``kalm_data.beam.stage.StageRunner``).
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum

from kalm_data import reasons
from kalm_data.mining import consistency
from kalm_data.mining.params import MiningParams
from kalm_data.mining.rank import Ranked
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

    def process(self, ranked: Ranked) -> Iterator:
        p, ranks = self.params, ranked.ranks
        rule = (p.filter_rule, ranks, p.filter_k, p.filter_query_k, p.filter_margin)
        if consistency.keep(*rule):
            yield ranked
            return
        yield self.reject(
            ranked.example,
            Reason.INCONSISTENT_RANKING,
            consistency.explain(*rule),
            positive_scores=[float(s) for s in ranked.positive_scores],
            positive_rank=ranks.positive_rank,
            query_rank=ranks.query_rank,
            score_at_k=ranks.score_at_k,
        )
