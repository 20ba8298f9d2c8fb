import numpy as np

from kalm_data.mining.search import build_index, search


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
