"""Token-budget batches for the teacher's forward pass, and their padding.

Contract: ``budget_batches(lengths, budget)`` splits positions ``0..n-1`` into batches such that
``len(batch) * max(lengths[batch]) <= budget`` (a text longer than the whole budget is a batch of
its own). Positions are taken in a stable sort by token length, so each batch pads little; the
result depends only on ``lengths`` and ``budget``: the same ordered texts always give the same
batches. ``pad(rows, value, left)`` turns a batch's token rows into one (batch, longest) array.

Why a budget and not a fixed count of texts: the work of a batch (and its memory) follows
``batch x longest``. Short texts in batches of 32 leave most of a CPU's time to per-batch
overhead; long ones in batches of 32 make large attention matrices. A budget gives short texts
big batches and long texts small ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def budget_batches(lengths: Sequence[int], budget: int) -> list[np.ndarray]:
    """Positions grouped into batches of at most ``budget`` padded tokens, shortest first."""
    if budget <= 0:
        raise ValueError(f"token budget must be positive, got {budget}")
    sizes = np.asarray(lengths, dtype=np.int64)  # (n,)
    order = np.argsort(sizes, kind="stable")  # equal lengths keep the caller's (length, key) order
    batches: list[np.ndarray] = []
    start = 0
    for end in range(1, len(order)):
        # Ascending lengths: order[end] is the longest if it joins; close the batch before it
        # when it would push batch x longest over the budget.
        if (end + 1 - start) * sizes[order[end]] > budget:
            batches.append(order[start:end])
            start = end
    if len(order):
        batches.append(order[start:])
    return batches


def pad(rows: Sequence[Sequence[int]], value: int, left: bool = False) -> np.ndarray:
    """(len(rows), longest) int64: ``rows`` padded with ``value`` on the right (or left)."""
    longest = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), longest), value, dtype=np.int64)
    for i, row in enumerate(rows):
        if left:
            out[i, longest - len(row) :] = row
        else:
            out[i, : len(row)] = row
    return out
