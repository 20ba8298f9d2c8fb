"""Nearest-neighbour search over a task pool with FAISS.

Contract: ``search(pool, queries, k)`` returns (scores, ids), each (n_queries, k'), k' = min(k,
n_pool), rows sorted by descending inner product; vectors must be L2-normalised float32, so
scores are cosines. ``flat`` is exact (IndexFlatIP, the KaLM setting); ``ivf`` is approximate
(IndexIVFFlat, inner product) and falls back to exact on pools too small to train it. Queries are
searched in chunks, so memory stays at O(chunk x k), never O(n_queries x n_pool).
"""

from __future__ import annotations

import logging
import math

import numpy as np

log = logging.getLogger(__name__)

CHUNK = 8192  # queries per FAISS call
MIN_POINTS_PER_LIST = 39  # FAISS's own k-means warning threshold


def build_index(pool: np.ndarray, kind: str = "flat", nlist: int = 0, nprobe: int = 32):
    """A FAISS inner-product index over ``pool`` (n, dim)."""
    import faiss

    n, dim = pool.shape
    nlist = nlist or max(1, int(4 * math.sqrt(n)))
    if kind == "ivf" and n >= nlist * MIN_POINTS_PER_LIST:
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(pool)
        index.nprobe = min(nprobe, nlist)
        index.add(pool)
        return index
    if kind == "ivf":
        log.info("pool of %d is too small for IVF with %d lists: exact search", n, nlist)
    index = faiss.IndexFlatIP(dim)
    index.add(pool)
    return index


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (scores, ids) for each query row; ids are -1 where fewer than k were found."""
    k = min(k, index.ntotal)
    if len(queries) == 0 or k == 0:
        return np.zeros((len(queries), k), np.float32), np.zeros((len(queries), k), np.int64)
    parts = [index.search(queries[i : i + CHUNK], k) for i in range(0, len(queries), CHUNK)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
