"""The search mining runs: each query's top-k by ``dot``, over one index or a sharded pool.

Contract of ``search_pool(pool, queries, k, spec, shard_size)``:
- Returns (scores, ids), each (n_queries, k'), k' = min(k, n_pool). Scores are
  ``kalm_data.mining.scores.dot`` (the same bits on every machine), rows are ordered by (score
  desc, pool id asc), ids are -1 (score -inf) where an approximate index found fewer than k'.
- ``flat``: each row is exactly the pool's top k' by (``dot`` desc, id asc). FAISS only proposes
  candidates (``top_k``), so neither BLAS rounding nor FAISS's pick among ties changes it.
  ``ivf`` / ``ivfpq``: the k' candidates FAISS found, re-scored and ordered the same way.
- A pool of more than ``shard_size`` rows is cut into consecutive shards of at most that many;
  each gets its own index, gives its own top k' and is dropped, and the shard lists are merged
  by (score desc, id asc). Each flat shard's list is exact, so the merge is the exact global
  top-k: sharded and unsharded answers are identical, bit for bit (tests/test_sharded_search.py
  on real embeddings). With ivf / ivfpq each shard trains its own index, so recall is that of
  a shard-sized index.
- Memory: at most ``workers`` shard indexes exist at once, so index memory is
  O(workers x shard_size), not O(n_pool); results are O(n_queries x k).
- Shards are searched on ``workers`` threads (FAISS releases the GIL) and merged in shard order
  with a total order, so the answer does not depend on ``workers``.

Why a flat top-k needs a check: FAISS scores with BLAS, whose rounding differs from ``dot`` (by
at most ~dim x 2^-24 for unit vectors) and from one shard layout to another. ``top_k`` asks FAISS
for k + a margin, re-scores them, and accepts a row when its k-th ``dot`` score beats the lowest
FAISS score returned by more than that bound, so that no text left out could reach the top k;
other rows (near-ties deeper than the margin) are searched again twice as deep.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from kalm_data.mining.scores import dot
from kalm_data.mining.search import IndexSpec, index_for, search

T = TypeVar("T")
R = TypeVar("R")

EXACT = IndexSpec()  # flat, on the CPU
WORKERS = 2  # shard searches in flight (each also uses FAISS's OpenMP threads)
_NO_ID = np.iinfo(np.int64).max  # sorts a missing id (-1) after every real one


def search_pool(
    pool: np.ndarray,
    queries: np.ndarray,
    k: int,
    spec: IndexSpec = EXACT,
    shard_size: int = 1_000_000,
    workers: int = WORKERS,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (scores, ids) of ``queries`` in ``pool`` (see module docstring)."""
    if len(pool) <= shard_size:
        return top_k(index_for(pool, spec), pool, queries, k, spec.kind == "flat")
    return sharded_search(pool, queries, k, shard_size, spec, workers)


def sharded_search(
    pool: np.ndarray,
    queries: np.ndarray,
    k: int,
    shard_size: int,
    spec: IndexSpec = EXACT,
    workers: int = WORKERS,
) -> tuple[np.ndarray, np.ndarray]:
    """``search_pool`` one shard of at most ``shard_size`` rows at a time."""
    if shard_size <= 0:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    k = min(k, len(pool))
    scores = np.zeros((len(queries), 0), np.float32)  # (n_queries, <= k) running top-k
    ids = np.zeros((len(queries), 0), np.int64)

    def one_shard(start: int) -> tuple[np.ndarray, np.ndarray]:
        shard = pool[start : start + shard_size]
        index = index_for(shard, spec)
        shard_scores, local = top_k(index, shard, queries, k, spec.kind == "flat")
        return shard_scores, np.where(local >= 0, local + start, -1)

    starts = range(0, len(pool), shard_size)
    for shard_scores, shard_ids in bounded_map(one_shard, starts, workers):
        scores = np.concatenate([scores, shard_scores], axis=1)
        scores, ids = ordered(scores, np.concatenate([ids, shard_ids], axis=1), k)
    return scores, ids


def top_k(
    index, vectors: np.ndarray, queries: np.ndarray, k: int, exact: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of ``queries`` in ``index`` (built over ``vectors``) by (``dot`` desc, id asc).
    ``exact`` (a flat index): the true top-k whatever FAISS's rounding (see module docstring);
    else FAISS's k candidates, re-scored and ordered."""
    n = index.ntotal
    k = min(k, n)
    scores = np.full((len(queries), k), -np.inf, np.float32)
    ids = np.full((len(queries), k), -1, np.int64)
    if k == 0:
        return scores, ids
    tolerance = 4 * queries.shape[1] * 2.0**-24  # 2x the worst rounding of either score
    depth = min(n, k + max(16, k // 4)) if exact else k
    rows = np.arange(len(queries))
    while len(rows):
        faiss_scores, found = search(index, queries[rows], depth)  # (n_rows, depth)
        got_scores, got_ids = _rescored(vectors, queries[rows], found, k)
        done = np.ones(len(rows), bool)
        if exact and depth < n:
            done = got_scores[:, k - 1] > faiss_scores[:, -1] + tolerance
        scores[rows[done]], ids[rows[done]] = got_scores[done], got_ids[done]
        rows, depth = rows[~done], min(n, 2 * depth)
    return scores, ids


def _rescored(
    vectors: np.ndarray, queries: np.ndarray, found: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's candidates per query re-scored with ``dot``, the first ``k`` by (score, id)."""
    scores = np.full((len(queries), k), -np.inf, np.float32)
    ids = np.full((len(queries), k), -1, np.int64)
    for r, (q, row) in enumerate(zip(queries, found, strict=True)):
        row = row[row >= 0]
        row_scores = dot(vectors[row], q)  # per query, as ranking scores it
        order = np.lexsort((row, -row_scores))[:k]
        scores[r, : len(order)], ids[r, : len(order)] = row_scores[order], row[order]
    return scores, ids


def ordered(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` of each row by (score desc, id asc); missing ids (-1) last, score -inf."""
    missing = ids < 0
    scores = np.where(missing, -np.inf, scores).astype(np.float32)
    order = np.lexsort((np.where(missing, _NO_ID, ids), -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)


def bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``fn`` over ``items`` on ``workers`` threads, results in input order, at most
    ``workers`` calls running or finished-but-unread at once (so at most that many shard
    indexes and shard results are alive)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as executor:
        pending = deque()
        for item in items:
            if len(pending) >= workers:
                yield pending.popleft().result()
            pending.append(executor.submit(fn, item))
        while pending:
            yield pending.popleft().result()
