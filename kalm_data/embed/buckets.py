"""Length buckets and key-range groups for the embedding stage.

Texts of similar length are encoded together (little padding), and every batch's composition
depends only on the set of texts, never on bundles or workers: a text's group is a pure function
of its length and its key, and a group is encoded in (length, key) order. That is what makes the
embeddings, and so every row, the same on any runner and any number of workers.

Why many groups, sized by cost: a local runner hands each worker a fixed share of the groups, and
the embedding stage ends when its slowest worker does. A bucket is cut into key ranges, more of
them the costlier its texts are to encode (``ranges_for``: ``ranges`` for the longest texts, a
few for short ones), so no single group is a large share of the work and workers finish close
together. The cut uses no count of the data, so no step has to see all texts first. Group ``i``
of ``n`` holds the keys of the ``i``-th of ``n`` equal ranges of key positions
(``key_position``): a group's texts, and the cache files it writes, span one narrow key range
(``kalm_data.embed.cache`` opens only the files that overlap the range asked for).
"""

from __future__ import annotations

import math

#: Estimated encoding cost of a text: a fixed part plus its characters up to about the
#: teacher's token limit (MiniLM on CPU: a 100-character text costs about a quarter of a
#: 900-character one; texts past ~1,300 characters are cut to 256 tokens).
COST_BASE = 150
COST_CAP = 1300
#: Key positions are the first 32 bits of a text key (a hex hash).
POSITIONS = 1 << 32


def length_bucket(text: str) -> str:
    """Half-octave bucket of the character length: ``len07`` holds ~90-128 characters."""
    return f"len{int(2 * math.log2(max(len(text), 1))):02d}"


def length_cost(chars: float) -> float:
    """Estimated encoding cost of a text of ``chars`` characters (arbitrary units)."""
    return COST_BASE + min(chars, COST_CAP)


def text_cost(text: str) -> int:
    """Estimated encoding cost of ``text`` (``length_cost`` of its length)."""
    return int(length_cost(len(text)))


def key_position(key: str) -> int:
    """Position of a text key in [0, ``POSITIONS``): its first 8 hex digits."""
    return int(key[:8], 16)


def ranges_for(bucket: str, ranges: int) -> int:
    """Key ranges of a length bucket: ``ranges`` for texts at the teacher's length cap, fewer
    (at least 1) for shorter ones, in proportion to the encoding cost of the bucket's texts."""
    if ranges <= 0:
        raise ValueError(f"ranges must be positive, got {ranges}")
    shortest = 2 ** (int(bucket.removeprefix("len")) / 2)  # characters
    return max(1, math.ceil(ranges * length_cost(shortest) / length_cost(COST_CAP)))


def group_key(text: str, key: str, ranges: int) -> str:
    """The embedding group of a text: ``<bucket>/<i>-of-<n>``, ``n = ranges_for(bucket)``,
    ``i`` the key's range."""
    bucket = length_bucket(text)
    n = ranges_for(bucket, ranges)
    return f"{bucket}/{key_position(key) * n // POSITIONS:04d}-of-{n:04d}"


def encode_order(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(key, text) pairs deduplicated and sorted by (length, key): the deterministic batch order."""
    unique = dict(items)
    return sorted(unique.items(), key=lambda kv: (len(kv[1]), kv[0]))
