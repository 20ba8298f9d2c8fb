"""Ranking one task's pool for each of its queries: one ``Ranked`` record per example.

Contract of ``rank_task``:
- FAISS returns ``search_depth + max positives + 1`` neighbours per query (so that removing an
  example's own texts still leaves ``search_depth`` candidates); they are re-scored with
  ``kalm_data.mining.scores.dot`` and sorted by (score desc, pool id), then the example's own
  ids (``TaskPool.own_ids``) are removed. Ranks are 0-based positions in that candidate list.
- ``positive_rank`` is the best positive's rank among the candidates: exact, even beyond the
  searched depth (one exact pass over the pool when needed).
- ``query_rank`` is the reverse direction: the example's query's rank among all the task's
  queries, searched with its best positive; None when not within ``filter_query_k + 1``.
- ``score_at_k`` is the score of the candidate at rank ``filter_k - 1``, None when fewer exist.
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
    """One example after ranking: what the consistency filter and row assembly need."""

    example: Example
    ranks: Ranks
    query_vector: np.ndarray  # (dim,)
    positive_ids: list[int]  # pool ids, in the example's order
    positive_scores: np.ndarray  # (n_positives,), same order
    cand_ids: np.ndarray  # (n_candidates,) pool ids in rank order, own texts removed
    cand_scores: np.ndarray  # (n_candidates,)

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
    best_pos = _best_positives(pool, pos_scores)
    query_ranks = _query_ranks(pool.queries, best_pos, params.filter_query_k)
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
    query_rank: int | None,
    searched_all: bool,
    k: int,
) -> Ranked:
    """Example ``i``'s candidates (own ids removed) and where its best positive stands."""
    q, own = pool.queries[i], pool.own_ids[i]
    cand_scores, cand_ids = _rescore(pool.vectors, neighbours, q)
    mask = ~np.isin(cand_ids, list(own))
    cand_ids, cand_scores = cand_ids[mask], cand_scores[mask]
    best = float(pos_scores.max())
    ranks = Ranks(
        _positive_rank(q, best, cand_scores, pool.vectors, own, searched_all),
        query_rank,
        best,
        float(cand_scores[k - 1]) if len(cand_scores) >= k else None,
    )
    return Ranked(
        example=pool.examples[i],
        ranks=ranks,
        query_vector=q,
        positive_ids=pool.positive_ids[i],
        positive_scores=pos_scores,
        cand_ids=cand_ids,
        cand_scores=cand_scores,
    )


def _best_positives(pool: TaskPool, pos_scores: list[np.ndarray]) -> np.ndarray:
    """(n_examples, dim): each example's best-scoring positive (the first on ties)."""
    best_pos = np.empty_like(pool.queries)
    for i, scores in enumerate(pos_scores):
        best_pos[i] = pool.vectors[pool.positive_ids[i][int(np.argmax(scores))]]
    return best_pos


def _rescore(pool: np.ndarray, ids: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's candidates for one query, re-scored with ``dot`` and sorted by (score desc, id)."""
    ids = ids[ids >= 0]
    scores = dot(pool[ids], q)
    order = np.lexsort((ids, -scores))
    return scores[order], ids[order]


def _positive_rank(
    q: np.ndarray,
    best: float,
    cand_scores: np.ndarray,
    pool: np.ndarray,
    own: set[int],
    searched_all: bool,
) -> int:
    """Candidates scoring above the best positive; exact beyond the depth via one dot product."""
    rank = int((cand_scores > best).sum())
    if rank < len(cand_scores) or searched_all:
        return rank
    above = dot(pool, q) > best  # (n_pool,)
    return int(above.sum()) - sum(1 for j in own if above[j])


def _query_ranks(queries: np.ndarray, best_pos: np.ndarray, query_k: int) -> list[int | None]:
    """Rank of each example's own query among all the task's queries, searched with its best
    positive; None when it is not within the first ``query_k + 1``."""
    index = build_index(queries)
    _, ids = search(index, best_pos, query_k + 1)
    out: list[int | None] = []
    for i, row in enumerate(ids):
        if i not in row:
            out.append(None)
            continue
        others = row[(row >= 0) & (row != i)]
        own = dot(queries[i : i + 1], best_pos[i])[0]
        out.append(int((dot(queries[others], best_pos[i]) > own).sum()))
    return out
