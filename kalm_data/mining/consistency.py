"""Ranking-consistency rules: keep a positive, or drop it with a reason.

Each positive of an example is judged on its own (``Ranks`` describes one positive). Ranks are
0-based and count only pool texts that are not the example's own positives or query;
``score_at_k`` is the score of the candidate at rank k-1 (the k-th best), None when the pool
has fewer than k candidates (then the forward test passes).

- ``kalm`` (KaLM's published rule, applied per positive): keep when the positive ranks < k
  among the pool for its query (k = 50), i.e. scores at least ``score_at_k``. It rejects
  mismatched pairs well, but also throws away clean pairs whose positive is merely hard: on
  templated data (MedQuAD's "Is X inherited?" answered by near-identical boilerplate) hundreds of
  texts outrank a correct one.
- ``mutual`` (our default): keep when the positive scores at least ``score_at_k - margin``
  (margin 0.05: "about as good as the k-th candidate" rather than strictly above it), *or* when,
  searching the task's queries with that positive, the example's own query ranks < ``query_k``
  (10). A positive swapped in from another query fails both ways: it scores far below the k-th
  candidate, and its own original query outranks the example's. A hard-but-correct positive
  passes one of the two.
- ``none``: keep everything (mine without filtering).

The KaLM code judges only an example's best positive; once rows sharing a query are merged, a
swapped positive then rides along with a correct one. Here every positive is judged, and the
filter stage (``kalm_data.stages.filter``) removes the failing ones and rejects their rows.
Measured numbers: ``benchmarks/filter_quality.py`` (and the README).

``judge`` applies the configured rule to one ranked example: the filter stage, run bare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kalm_data.records import RejectedRecord

if TYPE_CHECKING:
    from kalm_data.mining.params import MiningParams
    from kalm_data.mining.rank import Ranked

RULES = ("kalm", "mutual", "none")


@dataclass(frozen=True)
class Ranks:
    """Where one positive and the query stand (``query_rank`` None: beyond the depth)."""

    positive_rank: int
    query_rank: int | None
    positive_score: float
    score_at_k: float | None


def keep(rule: str, ranks: Ranks, k: int, query_k: int, margin: float = 0.05) -> bool:
    """The rule's verdict on one positive (see module docstring)."""
    if rule == "none":
        return True
    if rule == "kalm":
        return ranks.positive_rank < k
    if rule == "mutual":
        forward = ranks.score_at_k is None or ranks.positive_score >= ranks.score_at_k - margin
        return forward or (ranks.query_rank is not None and ranks.query_rank < query_k)
    raise ValueError(f"unknown filter rule {rule!r}; known: {', '.join(RULES)}")


def explain(rule: str, ranks: Ranks, k: int, query_k: int, margin: float = 0.05) -> str:
    """A one-line reason for a dropped positive."""
    if rule == "kalm":
        return f"positive ranks {ranks.positive_rank} for its query (kalm: needs < {k})"
    q = ">= search depth" if ranks.query_rank is None else str(ranks.query_rank)
    return (
        f"positive scores {ranks.positive_score:.3f} (rank {ranks.positive_rank}), below "
        f"the candidate at rank {k} ({ranks.score_at_k:.3f}) minus {margin}; and the query ranks "
        f"{q} among the task's queries for the positive (mutual: needs < {query_k})"
    )


def judge(ranked: Ranked, params: MiningParams) -> list[Ranked | RejectedRecord]:
    """The filter stage's outputs for ``ranked`` (``kalm_data.stages.filter``): ``ranked``
    itself when every positive passes; else a ``RejectedRecord`` per row whose positives all
    failed, and the example narrowed to its passing positives while one is left."""
    from kalm_data.stages.filter import RankingConsistency

    return list(RankingConsistency(params).process(ranked))
