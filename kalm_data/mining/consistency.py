"""Ranking-consistency rules: keep an example, or drop it with a reason.

Ranks are 0-based and count only pool texts that are not the example's own positives or query.

- ``kalm`` (KaLM's published rule): keep when the best positive ranks < k among the pool for its
  query (k = 50). It rejects mismatched pairs well, but also throws away clean pairs whose
  positive is merely hard (on templated data many near-identical documents outrank it).
- ``mutual`` (our default): keep when the ``kalm`` rule keeps, *or* when, searching the task's
  queries with the best positive, the example's own query ranks < ``query_k`` (10). A positive
  that was swapped in from another query fails both ways: its document is far from the query,
  and its own original query outranks the example's. A hard-but-correct positive usually still
  points back at its query. Use ``kalm`` to reproduce the paper, ``mutual`` for the best trade-off
  of noise removed against clean pairs kept, ``none`` to mine without filtering.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ranks:
    """Where the best positive and the query stand (``query_rank`` None: beyond the depth)."""

    positive_rank: int
    query_rank: int | None


def keep(rule: str, ranks: Ranks, k: int, query_k: int) -> bool:
    """The rule's verdict (see module docstring)."""
    if rule == "none":
        return True
    forward = ranks.positive_rank < k
    if rule == "kalm":
        return forward
    if rule == "mutual":
        return forward or (ranks.query_rank is not None and ranks.query_rank < query_k)
    raise ValueError(f"unknown filter rule {rule!r}; known: kalm, mutual, none")


def explain(rule: str, ranks: Ranks, k: int, query_k: int) -> str:
    """A one-line reason for a dropped example."""
    text = f"best positive ranks {ranks.positive_rank} for its query (rule {rule}: needs < {k})"
    if rule == "mutual":
        q = ">= search depth" if ranks.query_rank is None else str(ranks.query_rank)
        text += (
            f"; the query ranks {q} among the task's queries for the positive (needs < {query_k})"
        )
    return text
