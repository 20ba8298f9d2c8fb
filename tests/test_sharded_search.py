"""Sharded search equals one exact index, and mining with a sharded pool equals mining without,
on real pairs embedded with the real teacher; IVF / IVF-PQ recall against exact search."""

import numpy as np
import pytest

from kalm_data.curate.config import CurateConfig
from kalm_data.mining.params import MiningParams
from kalm_data.mining.pool import build_pool
from kalm_data.mining.rank import rank_task
from kalm_data.mining.scores import dot
from kalm_data.mining.search import IndexSpec, build_index, search
from kalm_data.mining.sharded import search_pool, sharded_search, top_k
from kalm_data.records import Example
from kalm_data.text import text_key

from realdata import load_pairs


@pytest.fixture(scope="module")
def real(teacher):
    """1,500 real pairs: their examples, the unique positives' vectors (the pool) and the
    queries' vectors, keyed by ``text_key``."""
    rows = load_pairs(1500, source="disfl")
    texts = sorted({t for r in rows for t in (r["query"], r["positive"])})
    vectors = dict(zip(map(text_key, texts), teacher.encode(texts), strict=True))
    examples = [
        Example(
            id=f"e{i:04d}",
            task="disfl",
            task_type="retrieval",
            query=r["query"],
            positives=[r["positive"]],
            negatives=[],
            source_file="pairs.jsonl.gz",
            source_rows=[i + 1],
            source_ids=[r["id"]],
        )
        for i, r in enumerate(rows)
    ]
    return examples, vectors


@pytest.fixture(scope="module")
def arrays(real):
    """(pool, queries): the unique positives and the queries as (n, 384) float32."""
    examples, vectors = real
    pool = np.stack([vectors[k] for k in sorted({text_key(e.positives[0]) for e in examples})])
    queries = np.stack([vectors[text_key(e.query)] for e in examples[:400]])
    return pool, queries


def brute_top_k(pool: np.ndarray, queries: np.ndarray, k: int):
    """Each query's first k of the pool by (``dot`` desc, id asc), by brute force."""
    out = [(lambda s: (s, np.lexsort((np.arange(len(s)), -s))[:k]))(dot(pool, q)) for q in queries]
    return np.stack([s[o] for s, o in out]), np.stack([o for _, o in out])


def test_flat_top_k_is_the_exact_top_k_by_dot_on_real_embeddings(arrays):
    pool, queries = arrays
    scores, ids = top_k(build_index(pool), pool, queries, 100)
    expected_scores, expected_ids = brute_top_k(pool, queries, 100)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(scores, expected_scores)
    # The same neighbours as FAISS's own answer, up to its rounding at the 100th place.
    _, raw = search(build_index(pool), queries, 100)
    assert np.mean([len(set(a) & set(b)) for a, b in zip(ids, raw, strict=True)]) > 99.9


@pytest.mark.parametrize("shard_size", [97, 500, 777, -1, 0])  # -1, 0: pool size - 1, pool size
def test_sharded_flat_search_equals_one_flat_index_on_real_embeddings(arrays, shard_size):
    pool, queries = arrays
    shard_size = shard_size if shard_size > 0 else len(pool) + shard_size
    scores, ids = search_pool(pool, queries, 100, shard_size=len(pool))  # one index
    got_scores, got_ids = sharded_search(pool, queries, 100, shard_size)
    np.testing.assert_array_equal(got_ids, ids)
    np.testing.assert_array_equal(got_scores, scores)  # the same bits


def test_workers_and_ties_across_shards_do_not_change_the_answer(arrays):
    pool, queries = arrays
    n = len(pool)
    # Rows 0-4 twice more, in other shards: each of those queries has a 3-way exact tie at
    # the top, straddling the 2nd place; the lower ids win, whatever the shards and workers.
    tied = np.concatenate([pool, pool[:5], pool[:5]])
    queries = np.concatenate([queries[:50], pool[:5]])
    for k in (2, 10):
        expected = brute_top_k(tied, queries, k)
        for shard_size, workers in ((len(tied), 1), (333, 1), (333, 2), (500, 3)):
            got = search_pool(tied, queries, k, shard_size=shard_size, workers=workers)
            np.testing.assert_array_equal(got[1], expected[1])
            np.testing.assert_array_equal(got[0], expected[0])
        assert expected[1][-5:, :2].tolist() == [[j, n + j] for j in range(5)]


def test_search_pool_shards_only_past_the_shard_size(arrays):
    pool, queries = arrays
    one = search_pool(pool, queries, 20, shard_size=len(pool))
    many = search_pool(pool, queries, 20, shard_size=len(pool) // 3)
    np.testing.assert_array_equal(one[1], many[1])


@pytest.mark.parametrize("shard_size", [250, 777, -1])  # -1: pool size - 1
def test_rank_task_with_a_sharded_pool_is_identical(real, shard_size):
    examples, vectors = real
    pool = build_pool(examples, vectors, corpus=[])
    shard_size = shard_size if shard_size > 0 else len(pool.vectors) + shard_size
    settings = dict(window_start=5, window_end=20, filter_k=10, filter_query_k=5)
    one = rank_task(pool, MiningParams.from_config(CurateConfig(**settings)))
    cfg = CurateConfig(**settings, pool_shard_size=shard_size)
    sharded = rank_task(pool, MiningParams.from_config(cfg))
    assert len(pool.vectors) > shard_size and len(pool.queries) > shard_size
    beyond = 0
    for a, b in zip(one, sharded, strict=True):
        assert a.example == b.example and a.positive_ids == b.positive_ids
        assert a.positive_ranks == b.positive_ranks
        np.testing.assert_array_equal(a.cand_ids, b.cand_ids)
        np.testing.assert_array_equal(a.cand_scores, b.cand_scores)
        np.testing.assert_array_equal(a.positive_scores, b.positive_scores)
        beyond += a.ranks.positive_rank >= len(a.cand_ids)
    assert beyond > 0  # the sliced exact pass was exercised


def test_ivf_recall_against_exact_on_real_embeddings(arrays, record_property):
    pool, queries = arrays
    _, exact = search(build_index(pool), queries, 10)
    for nprobe, floor in ((1, 0.4), (8, 0.9)):
        for shard_size in (len(pool), 800):
            spec = IndexSpec("ivf", nlist=8, nprobe=nprobe)
            _, got = search_pool(pool, queries, 10, spec, shard_size)
            recall = _recall(got, exact)
            record_property(f"ivf_recall@10_nprobe{nprobe}_shard{shard_size}", recall)
            assert recall >= floor, (nprobe, shard_size, recall)


@pytest.mark.slow
def test_ivfpq_recall_against_exact_on_real_embeddings(teacher, record_property):
    # IVF-PQ needs 256 x 39 = 9,984 texts to train its codebooks (else: exact search).
    rows = load_pairs(None, source="disfl")
    positives = sorted({r["positive"] for r in rows})[:10_000]
    pool = teacher.encode(positives)
    queries = teacher.encode([r["query"] for r in rows[:300]])
    _, exact = search(build_index(pool), queries, 10)
    ivfpq = build_index(pool, "ivfpq", nlist=64, nprobe=16)
    assert ivfpq.pq.M == 96 and ivfpq.code_size == 96  # 16x smaller than float32
    recall = _recall(search(ivfpq, queries, 10)[1], exact)
    record_property("ivfpq_recall@10_nprobe16", recall)
    assert recall >= 0.6, recall


def _recall(got: np.ndarray, exact: np.ndarray) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got, exact, strict=True)]))
