"""Inner products that come out the same on every machine.

Every score mining reports or compares (re-scored candidates, positives, given negatives, query
ranks) goes through ``dot``, so ranks and ties do not depend on the BLAS build or thread count.
"""

from __future__ import annotations

import numpy as np


def dot(vectors: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(n, dim) x (dim,) -> (n,) without BLAS: the same bits whatever the thread count, so
    scores, ranks and ties come out the same on every runner and worker layout."""
    return np.einsum("nd,d->n", vectors, q)


#: float32 unit roundoff; a length-d dot product's rounding error is at most d * U * |a| * |q|
U32 = 2.0**-24
#: scratch of one BLAS product in ``count_above``: rows x queries at most this many floats
_SCRATCH = 1 << 23


def count_above(
    vectors: np.ndarray, queries: np.ndarray, needs: list[np.ndarray]
) -> list[np.ndarray]:
    """Per query j: for each score in ``needs[j]``, how many rows of ``vectors`` score above it,
    scored by ``dot`` (so exactly ``(dot(vectors, queries[j])[:, None] > needs[j]).sum(0)``).

    Fast: one BLAS product scores a group of queries against every row; a BLAS score and a
    ``dot`` score of the same row both lie within d * U * |row| * |q| of the true product, so
    only rows whose BLAS score is within twice that bound (doubled again for safety) of a need
    are scored again with ``dot`` to settle the comparison."""
    out = [np.zeros(len(n), np.int64) for n in needs]
    if len(vectors) == 0 or len(queries) == 0:
        return out
    row_norm = float(np.sqrt(np.einsum("nd,nd->n", vectors, vectors).max()))  # no copy
    group = max(1, _SCRATCH // len(vectors))
    for start in range(0, len(queries), group):
        qs = queries[start : start + group]
        blas = vectors @ qs.T  # (n_rows, group)
        for j, q in enumerate(qs):
            need = needs[start + j]
            if len(need) == 0:
                continue
            tol = (
                4 * vectors.shape[1] * U32 * row_norm * float(np.linalg.norm(q.astype(np.float64)))
            )
            col = blas[:, j, None]  # (n_rows, 1)
            sure = (col > need + tol).sum(0)
            close = np.flatnonzero((np.abs(col - need) <= tol).any(1))
            if len(close):
                sure = (
                    sure
                    + (dot(vectors[close], q)[:, None] > need).sum(0)
                    - (col[close] > need + tol).sum(0)
                )
            out[start + j] += sure
    return out
