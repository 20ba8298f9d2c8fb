"""``count_above``: BLAS speed, ``dot``'s comparisons (kalm_data.mining.scores)."""

from __future__ import annotations

import numpy as np

from kalm_data.mining.scores import count_above, dot


def _unit(rng, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_counts_equal_dot_comparisons_even_at_ties():
    rng = np.random.default_rng(0)
    vectors, queries = _unit(rng, 3000, 384), _unit(rng, 40, 384)
    needs = []
    for j, q in enumerate(queries):
        exact = dot(vectors, q)
        tied = exact[rng.choice(len(vectors), 5, replace=False)]  # needs equal to rows' scores
        nudged = np.concatenate([np.nextafter(tied, 2), np.nextafter(tied, -2)])
        needs.append(np.concatenate([tied, nudged, [-1.5, 1.5]]).astype(np.float32)[: 3 + j % 14])
    got = count_above(vectors, queries, needs)
    for q, need, counts in zip(queries, needs, got, strict=True):
        assert counts.tolist() == (dot(vectors, q)[:, None] > need).sum(0).tolist()


def test_blas_alone_would_miscount_those_ties():
    """The test above bites: scored by the BLAS product alone, some tied rows land on the
    other side of their need."""
    rng = np.random.default_rng(0)
    vectors, queries = _unit(rng, 3000, 384), _unit(rng, 40, 384)
    blas = vectors @ queries.T
    exact = np.stack([dot(vectors, q) for q in queries], 1)
    assert (blas != exact).any()


def test_no_rows_or_no_needs():
    rng = np.random.default_rng(1)
    q = _unit(rng, 2, 8)
    assert [c.tolist() for c in count_above(np.zeros((0, 8), np.float32), q, [[0.1], []])] == [
        [0],
        [],
    ]
    assert count_above(_unit(rng, 5, 8), q, [np.array([]), np.array([2.0])])[1].tolist() == [0]
