"""Drawing hard negatives from a rank window, deterministically, with positive-aware guards.

Contract of ``draw``: from the candidates at ranks [window_start, window_end) (0-based, own
positives and query already removed), skip any candidate that scores above ``margin`` x the best
positive's score (NV-Retriever TopK-PercPos), is a near-duplicate of a positive (cosine >=
``near_duplicate``), or is already a given negative; then draw ``n`` without replacement with an
RNG seeded by (seed, example id), and return them in rank order. Fewer than ``n`` come back when
too few are eligible: the list is never padded with unchecked texts (a KaLM defect).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kalm_data.mining.scores import dot
from kalm_data.text import stable_seed

# (candidate pool ids (n,), positive pool ids) -> (n, n_positives) cosines
Similarity = Callable[[np.ndarray, list[int]], np.ndarray]


def vector_similarity(pool: np.ndarray) -> Similarity:
    """``Similarity`` over the (n_pool, dim) vectors ``pool``: one ``dot`` per positive, so a
    cosine has the same bits whichever other candidates or positives are asked with it."""

    def similarity(ids: np.ndarray, positive_ids: list[int]) -> np.ndarray:
        return np.stack([dot(pool[ids], pool[p]) for p in positive_ids], axis=1)

    return similarity


@dataclass
class DrawStats:
    """Counters summed over a task, reported in the manifest."""

    skipped_margin: int = 0
    skipped_near_duplicate: int = 0
    short: int = 0  # examples that got fewer negatives than asked
    # Given negatives scoring above margin x the best kept positive: they would have been skipped
    # as likely false negatives had they been mined. Kept (the data's own choice), only counted.
    given_above_margin: int = 0
    counts: dict[int, int] = field(default_factory=dict)  # negatives per example -> examples

    def add(self, other: DrawStats) -> None:
        self.skipped_margin += other.skipped_margin
        self.skipped_near_duplicate += other.skipped_near_duplicate
        self.short += other.short
        self.given_above_margin += other.given_above_margin
        for k, v in other.counts.items():
            self.counts[k] = self.counts.get(k, 0) + v


@dataclass(frozen=True)
class DrawParams:
    """How negatives are drawn, the same for every example of a run."""

    window: tuple[int, int]  # candidate ranks [start, end)
    margin: float  # skip candidates scoring above margin x the best positive
    near_duplicate: float  # skip candidates at least this close (cosine) to a positive
    seed: int


@dataclass(frozen=True)
class DrawRequest:
    """What one example needs: how many negatives, and what they must steer clear of."""

    example_id: str  # seeds the example's RNG with ``DrawParams.seed``
    n: int
    positive_ids: list[int]  # pool ids
    best_positive: float  # the best positive's score for the query
    exclude: frozenset[int] = frozenset()  # pool ids never drawn (the given negatives)


def draw(
    cand_ids: np.ndarray,
    cand_scores: np.ndarray,
    similarity: Similarity,
    request: DrawRequest,
    params: DrawParams,
    stats: DrawStats,
) -> list[tuple[int, float, int]]:
    """(pool id, score, rank) of the drawn negatives, in rank order. See module docstring.

    ``cand_ids`` / ``cand_scores`` are the example's candidates in rank order; ``similarity``
    gives their cosines to the positives (``vector_similarity`` of the pool's vectors, or
    cosines a pool shard computed); ``stats`` is updated in place."""
    start, end = params.window
    ids, scores = cand_ids[start:end], cand_scores[start:end]
    ranks = np.arange(start, start + len(ids))
    ok = _eligible(ids, scores, similarity, request, params, stats)
    eligible = np.flatnonzero(ok)
    if request.n <= 0:
        return []
    if len(eligible) < request.n:
        stats.short += 1
        chosen = eligible
    else:
        rng = np.random.default_rng(stable_seed(params.seed, request.example_id))
        chosen = np.sort(rng.choice(eligible, size=request.n, replace=False))
    return [(int(ids[c]), float(scores[c]), int(ranks[c])) for c in chosen]


def _eligible(
    ids: np.ndarray,
    scores: np.ndarray,
    similarity: Similarity,
    request: DrawRequest,
    params: DrawParams,
    stats: DrawStats,
) -> np.ndarray:
    """(n_window,) bool: not excluded, within the margin, not a near-duplicate of a positive.
    Counts the candidates each guard removes (excluded ones are not counted)."""
    ok = np.array([i not in request.exclude for i in ids], dtype=bool)
    if request.best_positive > 0:
        above = scores > params.margin * request.best_positive
        stats.skipped_margin += int((above & ok).sum())
        ok &= ~above
    if ok.any() and request.positive_ids:
        sims = similarity(ids[ok], request.positive_ids)  # (n_ok, n_pos)
        dup = np.zeros_like(ok)
        dup[np.flatnonzero(ok)] = sims.max(axis=1) >= params.near_duplicate
        stats.skipped_near_duplicate += int(dup.sum())
        ok &= ~dup
    return ok
