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
