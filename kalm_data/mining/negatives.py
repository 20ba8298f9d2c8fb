"""Drawing hard negatives from a rank window, deterministically, with positive-aware guards.

Contract of ``draw``: from the candidates at ranks [window_start, window_end) (0-based, own
positives and query already removed), skip any candidate that scores above ``margin`` x the best
positive's score (NV-Retriever TopK-PercPos), is a near-duplicate of a positive (cosine >=
``near_duplicate``), or is already a given negative; then draw ``n`` without replacement with an
RNG seeded by (seed, example id), and return them in rank order. Fewer than ``n`` come back when
too few are eligible: the list is never padded with unchecked texts (a KaLM defect).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kalm_data.text import stable_seed


@dataclass
class DrawStats:
    """Counters summed over a task, reported in the manifest."""

    skipped_margin: int = 0
    skipped_near_duplicate: int = 0
    short: int = 0  # examples that got fewer negatives than asked
    counts: dict[int, int] = field(default_factory=dict)  # negatives per example -> examples

    def add(self, other: DrawStats) -> None:
        self.skipped_margin += other.skipped_margin
        self.skipped_near_duplicate += other.skipped_near_duplicate
        self.short += other.short
        for k, v in other.counts.items():
            self.counts[k] = self.counts.get(k, 0) + v


def draw(
    cand_ids: np.ndarray,
    cand_scores: np.ndarray,
    pool: np.ndarray,
    positive_ids: list[int],
    best_positive: float,
    exclude: set[int],
    n: int,
    window: tuple[int, int],
    margin: float,
    near_duplicate: float,
    seed: int,
    example_id: str,
    stats: DrawStats,
) -> list[tuple[int, float, int]]:
    """(pool id, score, rank) of the drawn negatives, in rank order. See module docstring."""
    start, end = window
    ids, scores = cand_ids[start:end], cand_scores[start:end]
    ranks = np.arange(start, start + len(ids))
    ok = np.array([i not in exclude for i in ids], dtype=bool)
    if best_positive > 0:
        above = scores > margin * best_positive
        stats.skipped_margin += int((above & ok).sum())
        ok &= ~above
    if ok.any() and positive_ids:
        sims = np.einsum("nd,pd->np", pool[ids[ok]], pool[positive_ids])  # (n_ok, n_positives)
        dup = np.zeros_like(ok)
        dup[np.flatnonzero(ok)] = sims.max(axis=1) >= near_duplicate
        stats.skipped_near_duplicate += int(dup.sum())
        ok &= ~dup
    eligible = np.flatnonzero(ok)
    if n <= 0:
        return []
    if len(eligible) < n:
        stats.short += 1
        chosen = eligible
    else:
        rng = np.random.default_rng(stable_seed(seed, example_id))
        chosen = np.sort(rng.choice(eligible, size=n, replace=False))
    return [(int(ids[c]), float(scores[c]), int(ranks[c])) for c in chosen]
