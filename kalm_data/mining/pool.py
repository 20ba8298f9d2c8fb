"""The pool of one task: every text its examples can be ranked against, as pool ids.

Contract of ``build_pool``:
- Examples are taken in id order, so nothing downstream depends on input order.
- The pool is the unique texts of the examples' positives and given negatives plus the shared
  corpus, in ``text_key`` order; a text's pool id is its position in that order.
- Per example, in the same order: its query vector, the pool ids of its positives (one per
  positive, in the example's order) and its own ids (positives, and the query when the query
  text is itself in the pool), which are never candidates for that example.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kalm_data.records import Example
from kalm_data.text import text_key


@dataclass(frozen=True)
class TaskPool:
    """One task's examples and the texts and vectors they are ranked against."""

    examples: list[Example]  # in id order
    keys: list[str]  # pool id -> text key, sorted
    where: dict[str, int]  # text key -> pool id
    texts: dict[str, str]  # text key -> text
    vectors: np.ndarray  # (n_pool, dim) float32, row j is pool id j
    queries: np.ndarray  # (n_examples, dim), row i is examples[i]'s query
    positive_ids: list[list[int]]  # per example
    own_ids: list[set[int]]  # per example: positives and, if pooled, the query

    def ids(self, texts: list[str]) -> list[int]:
        """Pool ids of ``texts``, in order (each must be in the pool)."""
        return [self.where[text_key(t)] for t in texts]

    def text(self, pool_id: int) -> str:
        """The text of a pool id."""
        return self.texts[self.keys[pool_id]]


def build_pool(
    examples: list[Example], vectors: dict[str, np.ndarray], corpus: list[str]
) -> TaskPool:
    """See module docstring. ``vectors`` maps ``text_key`` of every text involved to its vector."""
    examples = sorted(examples, key=lambda e: e.id)
    texts = {text_key(t): t for e in examples for t in (*e.positives, *e.negatives)}
    texts.update((text_key(t), t) for t in corpus)
    keys = sorted(texts)
    where = {k: j for j, k in enumerate(keys)}
    positive_ids = [[where[text_key(p)] for p in e.positives] for e in examples]
    return TaskPool(
        examples=examples,
        keys=keys,
        where=where,
        texts=texts,
        vectors=np.stack([vectors[k] for k in keys]).astype(np.float32),
        queries=np.stack([vectors[text_key(e.query)] for e in examples]),
        positive_ids=positive_ids,
        own_ids=[_own_ids(e, pos, where) for e, pos in zip(examples, positive_ids, strict=True)],
    )


def _own_ids(example: Example, positive_ids: list[int], where: dict[str, int]) -> set[int]:
    """The example's positives and, when its query text is in the pool, the query."""
    own = set(positive_ids)
    if text_key(example.query) in where:
        own.add(where[text_key(example.query)])
    return own
