"""Nearest-neighbour search over a task pool with FAISS.

Contract: ``search(pool, queries, k)`` returns (scores, ids), each (n_queries, k'), k' = min(k,
n_pool), rows sorted by descending inner product; vectors must be L2-normalised float32, so
scores are cosines. Index kinds (all inner product):
- ``flat``: exact (IndexFlatIP, the KaLM setting).
- ``ivf``: approximate (IndexIVFFlat); falls back to exact on pools too small to train it.
- ``ivfpq``: approximate and compressed (IndexIVFPQ, ``pq_m`` bytes per vector, 8-bit codes);
  falls back to exact on pools too small to train its 256-centroid codebooks.
  ``benchmarks/bench_index_recall.py`` reports the recall of both against ``flat``.
Queries are searched in chunks, so memory stays at O(chunk x k), never O(n_queries x n_pool).

Device: ``resolve_device("auto")`` is "gpu" when FAISS sees a GPU, else "cpu"; a "gpu" index
is built on the CPU and copied to every GPU (``faiss.index_cpu_to_all_gpus``; not run here: the
machine this was written on has no GPU). GPU FAISS caps k at 2048, and its scores may differ
from the CPU's in the last bits; ``sharded.top_k`` re-scores FAISS's candidates on the CPU and
widens a flat search until its top-k is exact, so with ``flat`` the device changes nothing.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

CHUNK = 8192  # queries per FAISS call
MIN_POINTS_PER_LIST = 39  # FAISS's own k-means warning threshold
PQ_BITS = 8  # bits per PQ code: 256 centroids per sub-quantizer
DEVICES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class IndexSpec:
    """How to build an index: kind, IVF lists and probes, PQ bytes per vector, device."""

    kind: str = "flat"  # "flat", "ivf" or "ivfpq"
    nlist: int = 0  # 0 = 4 * sqrt(pool size)
    nprobe: int = 32
    pq_m: int = 0  # 0 = dim / 4 (a divisor of dim)
    device: str = "cpu"  # "cpu" or "gpu" (see ``resolve_device``)


def resolve_device(setting: str) -> str:
    """ "cpu" or "gpu" for a ``faiss_device`` setting; "auto" picks the GPU when FAISS has one."""
    if setting not in DEVICES:
        raise ValueError(f"unknown FAISS device {setting!r}; expected one of {DEVICES}")
    if setting == "cpu":
        return "cpu"
    gpus = _num_gpus()
    if setting == "gpu" and gpus == 0:
        raise ValueError("faiss_device=gpu, but FAISS sees no GPU (faiss-cpu, or no CUDA)")
    return "gpu" if gpus > 0 else "cpu"


def _num_gpus() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def build_index(
    pool: np.ndarray,
    kind: str = "flat",
    nlist: int = 0,
    nprobe: int = 32,
    pq_m: int = 0,
    device: str = "cpu",
):
    """A FAISS inner-product index over ``pool`` (n, dim); see the module docstring."""
    return index_for(pool, IndexSpec(kind, nlist, nprobe, pq_m, device))


def index_for(pool: np.ndarray, spec: IndexSpec):
    """``build_index`` with its settings in one record."""
    index = _build_cpu(pool, spec)
    if spec.device == "gpu":
        import faiss

        options = faiss.GpuMultipleClonerOptions()
        options.useFloat16LookupTables = True  # GPU IVF-PQ needs it past 48 bytes per vector
        index = faiss.index_cpu_to_all_gpus(index, co=options)
    return index


def _build_cpu(pool: np.ndarray, spec: IndexSpec):
    import faiss

    n, dim = pool.shape
    nlist = spec.nlist or max(1, int(4 * math.sqrt(n)))
    need = nlist * MIN_POINTS_PER_LIST
    if spec.kind == "ivfpq":
        need = max(nlist, 2**PQ_BITS) * MIN_POINTS_PER_LIST
    if spec.kind in ("ivf", "ivfpq") and n >= need:
        quantizer = faiss.IndexFlatIP(dim)
        if spec.kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            m = pq_subquantizers(dim, spec.pq_m)
            index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, PQ_BITS, faiss.METRIC_INNER_PRODUCT)
        index.train(pool)
        index.nprobe = min(spec.nprobe, nlist)
        index.add(pool)
        return index
    if spec.kind in ("ivf", "ivfpq"):
        log.info("pool of %d is too small for %s (needs %d): exact search", n, spec.kind, need)
    elif spec.kind != "flat":
        raise ValueError(f"unknown index kind {spec.kind!r}; expected flat, ivf or ivfpq")
    index = faiss.IndexFlatIP(dim)
    index.add(pool)
    return index


def pq_subquantizers(dim: int, pq_m: int) -> int:
    """PQ sub-quantizers (bytes per vector): ``pq_m``, or 0 = the largest divisor of ``dim``
    not above dim / 4 (4+ dimensions per byte: 16x smaller than float32)."""
    if pq_m:
        if dim % pq_m:
            raise ValueError(f"ivf_pq_m ({pq_m}) must divide the embedding dimension ({dim})")
        return pq_m
    return max(m for m in range(1, max(1, dim // 4) + 1) if dim % m == 0)


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (scores, ids) for each query row; ids are -1 where fewer than k were found."""
    k = min(k, index.ntotal)
    if len(queries) == 0 or k == 0:
        return np.zeros((len(queries), k), np.float32), np.zeros((len(queries), k), np.int64)
    parts = [index.search(queries[i : i + CHUNK], k) for i in range(0, len(queries), CHUNK)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
