"""Embedding near-duplicates of evaluation texts: the optional third test of ``decontaminate``.

Contract (pure; no Beam, no I/O; the Beam shell is ``kalm_data.beam.decontaminate_embed``):

- A training text matches an evaluation text when the cosine of their teacher vectors (the
  L2-normalised vectors of the embedding cache, so a dot product) is ``>= threshold``. This
  catches what shares no 13-word n-gram: a paraphrased query, a translated document.
- ``best_matches(train, evals, refs, threshold)`` gives, for each training row with a match,
  the best one: the highest cosine, ties broken by the smallest ``EvalRef``, so the result does
  not depend on how the evaluation texts were split or ordered. Scores are rounded to 4
  decimals in the reason, never in the decision.
- Evaluation texts are split by key range (``eval_shard``): shard ``s`` of ``n`` holds the keys
  whose position (``kalm_data.embed.buckets.key_position``) is in the ``s``-th of ``n`` equal
  ranges, so a worker reads only the cache files of its range and holds ~1/``n`` of the
  vectors. Every shard reads every training vector, so ``n`` is as small as the evaluation
  set allows (``shard_count``): one shard for up to ``TEXTS_PER_SHARD`` texts.
"""

from __future__ import annotations

import numpy as np

from kalm_data.embed.buckets import POSITIONS, key_position
from kalm_data.stages.decontaminate import EvalRef

#: Training rows x evaluation rows scored at once (float32: 64 MB).
BLOCK = 1 << 24
#: Evaluation texts a shard holds at most (384-d float32: ~150 MB of vectors).
TEXTS_PER_SHARD = 100_000


def shard_count(eval_texts: int, max_shards: int, per_shard: int = TEXTS_PER_SHARD) -> int:
    """Shards for ``eval_texts`` evaluation texts: as few as hold ``per_shard`` each (every
    shard re-reads every training vector), at most ``max_shards``, at least 1."""
    return max(1, min(max_shards, -(-eval_texts // per_shard)))


def eval_shard(key: str, shards: int) -> int:
    """The shard of an evaluation text's key: its key range (see the module docstring)."""
    return key_position(key) * shards // POSITIONS


def best_matches(
    train: np.ndarray, evals: np.ndarray, refs: list[EvalRef], threshold: float
) -> list[tuple[int, EvalRef, float]]:
    """(training row, best evaluation ref, cosine) for each row of ``train`` (n, d) whose best
    cosine against ``evals`` (m, d; ``refs[j]`` names row ``j``) is ``>= threshold``; rows in
    ascending order. Both sides L2-normalised float32."""
    if not len(train) or not len(evals):
        return []
    # Sorting the evaluation rows by ref makes argmax's first maximum the smallest ref.
    order = sorted(range(len(refs)), key=refs.__getitem__)
    evals, refs = evals[order], [refs[j] for j in order]
    rows = max(1, BLOCK // len(evals))
    out = []
    for start in range(0, len(train), rows):
        scores = train[start : start + rows] @ evals.T  # (rows, m)
        best = scores.argmax(axis=1)
        top = scores[np.arange(len(best)), best]
        for i in np.flatnonzero(top >= threshold).tolist():
            out.append((start + i, refs[int(best[i])], float(top[i])))
    return out
