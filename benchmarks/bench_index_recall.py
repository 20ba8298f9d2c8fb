"""Recall, speed and index memory of the approximate FAISS indexes against exact search, and
sharded exact search against one exact index, on real embeddings.

    python benchmarks/bench_index_recall.py               # all of qa_pairs_en (see below)
    python benchmarks/bench_index_recall.py --source disfl  # Disfl-QA only (short texts)
    python benchmarks/bench_index_recall.py --limit 3000  # the first 3,000 pairs only

Data: the unique positives of ../shared/data/qa_pairs_en are the pool, the unique queries are
the queries; both are embedded once with the default teacher (MiniLM, 384 dims) and cached as
.npy under /tmp/kalm_bench_index_recall (all of it: ~25 min on 2 idle cores, mostly the long
MedQuAD answers; Disfl-QA alone: ~4 min).

Table 1 (the peer is ``flat``, exact IndexFlatIP): for ``ivf`` and ``ivfpq``
(``kalm_data.mining.search``; ``--nlist`` lists, "exact" when the pool is too small to train
them; ivfpq at its default 96 bytes per vector) at several nprobe: recall@10 and recall@100
of the ids against ``flat``'s, build and search time, the index's size
(``faiss.serialize_index``) and the ratio of search time and size to ``flat``'s.
Table 2 (the peer is ``search_pool`` on one flat index, what mining runs below
``pool_shard_size``: FAISS's candidates made exact by ``dot``): FAISS's flat search as is (the
share of its top-100 ids that are the exact ones, and its time), then
``kalm_data.mining.sharded.sharded_search`` (flat shards) at several shard sizes: whether ids
and scores are identical to the peer's, time, the index memory alive at once (one shard per
worker) and the time ratio.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from kalm_data.mining.search import IndexSpec, index_for, search
from kalm_data.mining.sharded import WORKERS, search_pool, sharded_search

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "qa_pairs_en" / "pairs.jsonl.gz"
CACHE = Path("/tmp/kalm_bench_index_recall")
NPROBES = (1, 4, 16, 64)
SHARD_SIZES = (1000, 4096, 7777)


def texts(limit: int | None, source: str) -> tuple[list[str], list[str]]:
    """(unique positives, unique queries) of the first ``limit`` pairs whose source starts with
    ``source``, each sorted."""
    with gzip.open(DATA, "rt", encoding="utf-8") as f:
        rows = [r for r in map(json.loads, f) if r["source"].startswith(source)]
    rows = rows[:limit] if limit else rows
    return sorted({r["positive"] for r in rows}), sorted({r["query"] for r in rows})


def embed_cached(name: str, items: list[str], chunk: int = 1000) -> np.ndarray:
    """``items`` embedded with the default teacher, cached per chunk of texts (by a hash of
    them), so an interrupted run resumes where it stopped."""
    parts, teacher = [], None
    CACHE.mkdir(parents=True, exist_ok=True)
    for i in range(0, len(items), chunk):
        part = items[i : i + chunk]
        digest = hashlib.sha256("\n".join(part).encode()).hexdigest()[:16]
        path = CACHE / f"{digest}-{len(part)}.npy"
        if not path.exists():
            if teacher is None:
                from kalm_data.embed.teacher import Teacher, default_teacher

                teacher = Teacher(default_teacher())
            np.save(path, teacher.encode(part).astype(np.float32))
            print(f"  embedded {name} {i + len(part)}/{len(items)}", flush=True)
        parts.append(np.load(path))
    return np.concatenate(parts)


def index_bytes(index) -> int:
    import faiss

    return int(faiss.serialize_index(index).size)


def timed_search(pool, queries, spec: IndexSpec, k: int):
    """(ids, build seconds, search seconds, index bytes, IVF lists or 0 for an exact index)."""
    t0 = time.perf_counter()
    index = index_for(pool, spec)
    t1 = time.perf_counter()
    _, ids = search(index, queries, k)
    took = time.perf_counter() - t1
    return ids, t1 - t0, took, index_bytes(index), getattr(index, "nlist", 0)


def recall(approx: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Mean share of the exact top-k ids found in the approximate top-k."""
    return float(
        np.mean([len(set(a[:k]) & set(e[:k])) / k for a, e in zip(approx, exact, strict=True)])
    )


def recall_table(pool: np.ndarray, queries: np.ndarray, nlist: int) -> None:
    exact, build, took, size, _ = timed_search(pool, queries, IndexSpec("flat"), 100)
    print(f"\n{'index':<7}{'lists':>6}{'nprobe':>7}{'R@10':>7}{'R@100':>7}{'build s':>8}"
          f"{'search s':>9}{'MB':>7}{'time/flat':>10}{'size/flat':>10}")  # fmt: skip
    print(f"{'flat':<7}{'-':>6}{'-':>7}{1:>7.3f}{1:>7.3f}{build:>8.2f}{took:>9.2f}"
          f"{size / 1e6:>7.1f}{1:>10.2f}{1:>10.2f}")  # fmt: skip
    for kind in ("ivf", "ivfpq"):
        for nprobe in NPROBES:
            ids, b, t, s, lists = timed_search(pool, queries, IndexSpec(kind, nlist, nprobe), 100)
            print(f"{kind:<7}{lists or 'exact':>6}{nprobe:>7}{recall(ids, exact, 10):>7.3f}"
                  f"{recall(ids, exact, 100):>7.3f}{b:>8.2f}{t:>9.2f}{s / 1e6:>7.1f}"
                  f"{t / took:>10.2f}{s / size:>10.2f}")  # fmt: skip


def shard_table(pool: np.ndarray, queries: np.ndarray, k: int = 100) -> None:
    t0 = time.perf_counter()
    _, raw = search(index_for(pool, IndexSpec("flat")), queries, k)
    raw_took = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores, ids = search_pool(pool, queries, k, shard_size=len(pool))
    took = time.perf_counter() - t0
    same_as_raw = np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, raw, strict=True)])
    size = len(pool) * pool.shape[1] * 4  # a flat index holds a copy of the vectors
    print(f"\n{'top-100 search':<26}{'identical':>10}{'time s':>8}{'index MB':>10}"
          f"{'time/flat':>11}")  # fmt: skip
    print(f"{'FAISS flat, as is':<26}{f'{same_as_raw:.4f}':>10}{raw_took:>8.2f}"
          f"{size / 1e6:>10.1f}{raw_took / took:>11.2f}")  # fmt: skip
    print(f"{'flat, one index (exact)':<26}{'-':>10}{took:>8.2f}{size / 1e6:>10.1f}{1:>11.2f}")
    for shard in SHARD_SIZES:
        t0 = time.perf_counter()
        got_scores, got_ids = sharded_search(pool, queries, k, shard, workers=WORKERS)
        t = time.perf_counter() - t0
        same = bool((got_ids == ids).all() and (got_scores == scores).all())
        sizes = [min(shard, len(pool) - s) for s in range(0, len(pool), shard)]
        alive = max(sum(sizes[i : i + WORKERS]) for i in range(len(sizes)))  # shards at once
        peak = alive * pool.shape[1] * 4  # a flat shard index holds a copy of its vectors
        label = f"sharded {shard} x{WORKERS} workers"
        print(f"{label:<26}{str(same):>10}{t:>8.2f}{peak / 1e6:>10.1f}{t / took:>11.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="first N pairs only")
    parser.add_argument(
        "--source", default="", help="only pairs whose source starts with this (disfl, medquad)"
    )
    parser.add_argument(
        "--nlist",
        type=int,
        default=128,
        help="IVF lists (mining's default, 4 * sqrt(pool), needs 24k+ texts to train)",
    )
    args = parser.parse_args(argv)
    positives, questions = texts(args.limit, args.source)
    print(
        f"qa_pairs_en {args.source or 'all'}: pool {len(positives)} unique positives, "
        f"{len(questions)} unique queries"
    )
    pool = embed_cached("pool", positives)
    queries = embed_cached("queries", questions)
    recall_table(pool, queries, args.nlist)
    shard_table(pool, queries)


if __name__ == "__main__":
    main()
