import numpy as np
import pytest
from pydantic import ValidationError

from kalm_data.curate.config import CurateConfig
from kalm_data.mining.params import MiningParams
from kalm_data.mining.search import (
    IndexSpec,
    build_index,
    pq_subquantizers,
    resolve_device,
    search,
)


def unit(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_search_is_exact():
    pool, queries = unit(500, 32, 0), unit(40, 32, 1)
    scores, ids = search(build_index(pool), queries, 10)
    brute = np.argsort(-(queries @ pool.T), axis=1)[:, :10]
    assert (ids == brute).all()
    assert np.allclose(scores, np.take_along_axis(queries @ pool.T, brute, 1), atol=1e-5)


def test_ivf_recall_against_brute_force_on_real_embeddings(teacher):
    from realdata import load_pairs

    rows = load_pairs(1500, source="disfl")
    pool = teacher.encode([r["positive"] for r in rows])
    queries = teacher.encode([r["query"] for r in rows[:300]])
    k = 100
    _, exact = search(build_index(pool), queries, k)
    _, approx = search(build_index(pool, "ivf", nlist=16, nprobe=8), queries, k)
    recall = np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.9, recall


def test_ivf_falls_back_to_exact_on_a_small_pool():
    pool, queries = unit(50, 16, 2), unit(5, 16, 3)
    _, ids = search(build_index(pool, "ivf"), queries, 5)
    assert (ids == np.argsort(-(queries @ pool.T), axis=1)[:, :5]).all()


def test_k_larger_than_pool():
    scores, ids = search(build_index(unit(3, 8, 4)), unit(2, 8, 5), 10)
    assert ids.shape == (2, 3)


def test_ivfpq_builds_compressed_codes_and_falls_back_to_exact_on_a_small_pool():
    import faiss

    pool, queries = unit(10_000, 32, 8), unit(20, 32, 9)
    index = build_index(pool, "ivfpq", nlist=16, nprobe=4)
    assert isinstance(index, faiss.IndexIVFPQ) and index.pq.M == 8 and index.nprobe == 4
    small = build_index(pool[:2000], "ivfpq", nlist=16)  # < 256 x 39 to train the codebooks
    assert isinstance(small, faiss.IndexFlatIP)
    _, ids = search(small, queries, 5)
    assert (ids == np.argsort(-(queries @ pool[:2000].T), axis=1)[:, :5]).all()
    with pytest.raises(ValueError, match="must divide"):
        build_index(pool, "ivfpq", nlist=16, pq_m=5)
    with pytest.raises(ValueError, match="unknown index kind"):
        build_index(pool, "hnsw")


def test_pq_bytes_default_to_a_quarter_of_the_dimension():
    assert pq_subquantizers(384, 0) == 96
    assert pq_subquantizers(768, 0) == 192
    assert pq_subquantizers(30, 0) == 6  # largest divisor <= 30 / 4 = 7
    assert pq_subquantizers(384, 48) == 48


def test_auto_device_picks_the_cpu_without_a_gpu():
    import faiss

    if faiss.get_num_gpus() > 0:
        pytest.skip("a GPU is present")
    assert resolve_device("auto") == resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="no GPU"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="unknown FAISS device"):
        resolve_device("tpu")
    params = MiningParams.from_config(CurateConfig(index="ivfpq", ivf_pq_m=48))
    assert params.faiss_device == "auto"
    assert params.index_spec() == IndexSpec("ivfpq", 0, 32, 48, "cpu")


def test_config_validates_the_new_index_settings():
    with pytest.raises(ValidationError):
        CurateConfig(faiss_device="tpu")
    with pytest.raises(ValidationError):
        CurateConfig(pool_shard_size=0)
    with pytest.raises(ValidationError):
        CurateConfig(ivf_pq_m=-1)
    assert CurateConfig().pool_shard_size == 1_000_000  # nothing is sharded by default
