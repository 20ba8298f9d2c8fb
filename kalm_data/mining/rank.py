"""Ranking one task's pool for each of its queries: one ``Ranked`` record per example.

Contract of ``rank_task``:
- FAISS returns ``search_depth + max positives + 1`` neighbours per query (so that removing an
  example's own texts still leaves ``search_depth`` candidates); they are re-scored with
  ``kalm_data.mining.scores.dot`` and sorted by (score desc, pool id), then the example's own
  ids (``TaskPool.own_ids``: all its positives and its query) are removed. Ranks are 0-based
  positions in that candidate list.
- Per positive (``Ranked.positive_ranks``, in the example's order): ``positive_rank`` is its
  rank among the candidates, exact even beyond the searched depth (one exact pass over the pool
  when needed); ``query_rank`` is the reverse direction: the example's query's rank among all
  the task's queries, searched with that positive, None when not within ``filter_query_k + 1``.
- ``score_at_k`` (the same for every positive of an example) is the score of the candidate at
  rank ``filter_k - 1``, None when fewer exist.
- ``Ranked.ranks`` is the best positive's (highest score, the first on ties).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kalm_data.mining.consistency import Ranks
from kalm_data.mining.params import MiningParams
from kalm_data.mining.pool import TaskPool
from kalm_data.mining.scores import dot
from kalm_data.mining.search import build_index, search
from kalm_data.records import Example


@dataclass(frozen=True)
class Ranked:
    """One example after ranking: what the consistency filter and row assembly need.

    ``positive_ranks``, ``positive_ids`` and ``positive_scores`` are aligned with
    ``example.positives``; ``dropped`` counts positives the filter already removed."""

    example: Example
    positive_ranks: tuple[Ranks, ...]
    query_vector: np.ndarray  # (dim,)
    positive_ids: list[int]  # pool ids, in the example's order
    positive_scores: np.ndarray  # (n_positives,), same order
    cand_ids: np.ndarray  # (n_candidates,) pool ids in rank order, own texts removed
    cand_scores: np.ndarray  # (n_candidates,)
    dropped: int = 0

    @property
    def ranks(self) -> Ranks:
        """The best positive's ranks (highest score, the first on ties)."""
        return self.positive_ranks[int(np.argmax(self.positive_scores))]

    @property
    def source_rows(self) -> list[int]:
        """The input rows this example stands for (what the stage shell counts)."""
        return self.example.source_rows


def rank_task(pool: TaskPool, params: MiningParams) -> list[Ranked]:
    """A ``Ranked`` per example of ``pool``, in the pool's example order (see module docstring)."""
    index = build_index(pool.vectors, params.index, params.ivf_nlist, params.ivf_nprobe)
    depth = params.search_depth + max(len(e.positives) for e in pool.examples) + 1
    _, ids = search(index, pool.queries, depth)  # (n_examples, depth')
    pos_scores = [
        dot(pool.vectors[p], q) for p, q in zip(pool.positive_ids, pool.queries, strict=True)
    ]  # per example: (n_positives,)
    query_ranks = _query_ranks(pool, params.filter_query_k)
    searched_all = depth >= len(pool.vectors)
    return [
        _rank_one(pool, i, ids[i], pos_scores[i], query_ranks[i], searched_all, params.filter_k)
        for i in range(len(pool.examples))
    ]


def _rank_one(
    pool: TaskPool,
    i: int,
    neighbours: np.ndarray,
    pos_scores: np.ndarray,
    query_ranks: list[int | None],
    searched_all: bool,
    k: int,
) -> Ranked:
    """Example ``i``'s candidates (own ids removed) and where each of its positives stands."""
    q, own = pool.queries[i], pool.own_ids[i]
    cand_scores, cand_ids = _rescore(pool.vectors, neighbours, q)
    mask = ~np.isin(cand_ids, list(own))
    cand_ids, cand_scores = cand_ids[mask], cand_scores[mask]
    at_k = float(cand_scores[k - 1]) if len(cand_scores) >= k else None
    exact = _ExactRanks(q, cand_scores, pool.vectors, own, searched_all)
    positive_ranks = tuple(
        Ranks(exact.rank(float(s)), qr, float(s), at_k)
        for s, qr in zip(pos_scores, query_ranks, strict=True)
    )
    return Ranked(
        example=pool.examples[i],
        positive_ranks=positive_ranks,
        query_vector=q,
        positive_ids=pool.positive_ids[i],
        positive_scores=pos_scores,
        cand_ids=cand_ids,
        cand_scores=cand_scores,
    )


def _rescore(pool: np.ndarray, ids: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's candidates for one query, re-scored with ``dot`` and sorted by (score desc, id)."""
    ids = ids[ids >= 0]
    scores = dot(pool[ids], q)
    order = np.lexsort((ids, -scores))
    return scores[order], ids[order]


class _ExactRanks:
    """Candidates scoring above a score, for one query; exact beyond the searched depth via one
    dot product over the pool, computed at most once per example."""

    def __init__(
        self,
        q: np.ndarray,
        cand_scores: np.ndarray,
        pool: np.ndarray,
        own: set[int],
        searched_all: bool,
    ):
        self.q, self.cand_scores, self.pool = q, cand_scores, pool
        self.own, self.searched_all = own, searched_all
        self._all: np.ndarray | None = None  # (n_pool,) scores of every pool text

    def rank(self, score: float) -> int:
        rank = int((self.cand_scores > score).sum())
        if rank < len(self.cand_scores) or self.searched_all:
            return rank
        if self._all is None:
            self._all = dot(self.pool, self.q)
        above = self._all > score
        return int(above.sum()) - sum(1 for j in self.own if above[j])


def _query_ranks(pool: TaskPool, query_k: int) -> list[list[int | None]]:
    """Per example, per positive: the rank of the example's own query among all the task's
    queries, searched with that positive; None when not within the first ``query_k + 1``."""
    owner = [i for i, ids in enumerate(pool.positive_ids) for _ in ids]  # (n_positives_total,)
    vectors = pool.vectors[[j for ids in pool.positive_ids for j in ids]]
    index = build_index(pool.queries)
    _, found = search(index, vectors, query_k + 1)
    flat: list[int | None] = []
    for i, p, row in zip(owner, vectors, found, strict=True):
        if i not in row:
            flat.append(None)
            continue
        others = row[(row >= 0) & (row != i)]
        own = dot(pool.queries[i : i + 1], p)[0]
        flat.append(int((dot(pool.queries[others], p) > own).sum()))
    out, start = [], 0
    for ids in pool.positive_ids:
        out.append(flat[start : start + len(ids)])
        start += len(ids)
    return out
