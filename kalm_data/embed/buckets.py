"""Length buckets for the embedding stage.

Texts of similar length are encoded together (little padding), and every batch's composition
depends only on the set of texts, never on bundles or workers: a text's bucket is a pure
function of its length and key, and a bucket is encoded in (length, key) order. That is what
makes the embeddings, and so every row, the same on any runner and any number of workers.
"""

from __future__ import annotations

import math


def length_bucket(text: str) -> str:
    """Half-octave bucket of the character length: ``len07`` holds ~90-128 characters."""
    return f"len{int(2 * math.log2(max(len(text), 1))):02d}"


def group_key(text: str, key: str, shards: int) -> str:
    """The embedding group of a text: its length bucket and one of ``shards`` hash shards."""
    return f"{length_bucket(text)}/{int(key[:8], 16) % shards}"


def encode_order(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(key, text) pairs deduplicated and sorted by (length, key): the deterministic batch order."""
    unique = dict(items)
    return sorted(unique.items(), key=lambda kv: (len(kv[1]), kv[0]))
