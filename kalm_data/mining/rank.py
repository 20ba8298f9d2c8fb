"""Ranking one task's pool for each of its queries: one ``Ranked`` record per example.

Contract of ``rank_task``:
- Each query gets ``search_depth + max positives + 1`` neighbours (so that removing an
  example's own texts still leaves ``search_depth`` candidates) from
  ``kalm_data.mining.sharded.search_pool``: scored with ``kalm_data.mining.scores.dot`` and
  sorted by (score desc, pool id), with ``flat`` exactly the pool's top ones by that order;
  then the example's own ids (``TaskPool.own_ids``: all its positives and its query) are
  removed. Ranks are 0-based positions in that candidate list.
- Per positive (``Ranked.positive_ranks``, in the example's order): ``positive_rank`` is its
  rank among the candidates, exact even beyond the searched depth (one exact pass over the pool
  when needed); ``query_rank`` is the reverse direction: the example's query's rank among all
  the task's queries, searched with that positive, None when not within ``filter_query_k + 1``.
- ``score_at_k`` (the same for every positive of an example) is the score of the candidate at
  rank ``filter_k - 1``, None when fewer exist.
- ``Ranked.ranks`` is the best positive's (highest score, the first on ties).
- Pools (and query sets) larger than ``pool_shard_size`` are searched shard by shard
  (``kalm_data.mining.sharded``), and the exact pass runs over the pool in slices of that size:
  with ``flat`` the ``Ranked`` records are identical to an unsharded run, and memory beyond the
  pool's own vectors stays O(shard size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kalm_data.mining.consistency import Ranks
from kalm_data.mining.params import MiningParams
from kalm_data.mining.pool import TaskPool
from kalm_data.mining.scores import count_above, dot
from kalm_data.mining.search import IndexSpec
from kalm_data.mining.sharded import search_pool
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


def neighbours(examples, params: MiningParams) -> int:
    """Neighbours each query is searched for: the search depth plus room for its own texts
    (``examples``: anything with ``positives``)."""
    return params.search_depth + max(len(e.positives) for e in examples) + 1


def rank_task(pool: TaskPool, params: MiningParams) -> list[Ranked]:
    """A ``Ranked`` per example of ``pool``, in the pool's example order (see module docstring)."""
    spec, shard = params.index_spec(), params.pool_shard_size
    depth = neighbours(pool.examples, params)
    scores, ids = search_pool(pool.vectors, pool.queries, depth, spec, shard)  # (n_ex, depth')
    pos_scores = [
        dot(pool.vectors[p], q) for p, q in zip(pool.positive_ids, pool.queries, strict=True)
    ]  # per example: (n_positives,)
    query_ranks = _query_ranks(pool, params.filter_query_k, IndexSpec(device=spec.device), shard)
    candidates = [_candidates(pool, i, scores[i], ids[i]) for i in range(len(pool.examples))]
    searched_all = depth >= len(pool.vectors)
    ranks = _positive_ranks(pool, candidates, pos_scores, searched_all, shard)
    k = params.filter_k
    return [
        Ranked(
            example=pool.examples[i],
            positive_ranks=tuple(
                Ranks(r, qr, float(s), _score_at(cand_scores, k))
                for r, s, qr in zip(ranks[i], pos_scores[i], query_ranks[i], strict=True)
            ),
            query_vector=pool.queries[i],
            positive_ids=pool.positive_ids[i],
            positive_scores=pos_scores[i],
            cand_ids=cand_ids,
            cand_scores=cand_scores,
        )
        for i, (cand_ids, cand_scores) in enumerate(candidates)
    ]


def _candidates(
    pool: TaskPool, i: int, scores: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Example ``i``'s searched neighbours (by score desc, id; -1 ids last) without its own
    texts and missing ids: (ids, scores)."""
    mask = (ids >= 0) & ~np.isin(ids, list(pool.own_ids[i]))
    return ids[mask], scores[mask]


def _score_at(cand_scores: np.ndarray, k: int) -> float | None:
    return float(cand_scores[k - 1]) if len(cand_scores) >= k else None


def _positive_ranks(
    pool: TaskPool,
    candidates: list[tuple[np.ndarray, np.ndarray]],
    pos_scores: list[np.ndarray],
    searched_all: bool,
    chunk: int,
) -> list[list[int]]:
    """Per example, per positive: how many candidates score above it; past the searched depth,
    how many pool texts (own ids left out) do, counted exactly for every such positive of the
    task together (``count_above``, over the pool in slices of ``chunk``)."""
    ranks, beyond = [], []
    for i, ((_, cand_scores), scores) in enumerate(zip(candidates, pos_scores, strict=True)):
        r = (cand_scores[None, :] > scores[:, None]).sum(1)  # (n_positives,)
        past = r >= len(cand_scores)
        if not searched_all and past.any():
            beyond.append((i, past))
        ranks.append(r)
    if beyond:
        queries = pool.queries[[i for i, _ in beyond]]
        needs = [pos_scores[i][past] for i, past in beyond]
        above = [np.zeros(len(n), np.int64) for n in needs]
        for start in range(0, len(pool.vectors), chunk):
            part = count_above(pool.vectors[start : start + chunk], queries, needs)
            above = [a + b for a, b in zip(above, part, strict=True)]
        for (i, past), need, count in zip(beyond, needs, above, strict=True):
            own = pool.vectors[sorted(pool.own_ids[i])]
            ranks[i][past] = count - (dot(own, pool.queries[i])[:, None] > need).sum(0)
    return [r.tolist() for r in ranks]


def _query_ranks(
    pool: TaskPool, query_k: int, spec: IndexSpec, shard: int
) -> list[list[int | None]]:
    """Per example, per positive: the rank of the example's own query among all the task's
    queries, searched (exactly) with that positive; None when not within the first
    ``query_k + 1``."""
    owner = [i for i, ids in enumerate(pool.positive_ids) for _ in ids]  # (n_positives_total,)
    vectors = pool.vectors[[j for ids in pool.positive_ids for j in ids]]
    _, found = search_pool(pool.queries, vectors, query_k + 1, spec, shard)
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
