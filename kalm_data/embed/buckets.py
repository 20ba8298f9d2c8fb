"""Length buckets and equal-cost groups for the embedding stage.

Texts of similar length are encoded together (little padding), and every batch's composition
depends only on the set of texts, never on bundles or workers: a text's group is a pure function
of its length, its key and the plan (``plan_groups``), which depends only on the set of unique
texts; a group is encoded in (length, key) order. That is what makes the embeddings, and so
every row, the same on any runner and any number of workers.

Why groups of equal cost: a local runner hands each worker a fixed share of the groups, and a
run's embedding ends when its slowest worker does. Groups cut per length bucket by their
estimated encoding cost (``text_cost``) into pieces of about ``group_size`` average texts each
keep every worker busy to the end. A bucket's group ``i`` of ``n`` holds the keys of the ``i``-th
of ``n`` equal ranges of key positions (``key_position``), so a group's texts, and the cache
files it writes, span one narrow key range (``kalm_data.embed.cache`` reads only the files that
overlap the range asked for).
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


def text_cost(text: str) -> int:
    """Estimated encoding cost of ``text`` (arbitrary units, see ``COST_BASE``)."""
    return COST_BASE + min(len(text), COST_CAP)


def key_position(key: str) -> int:
    """Position of a text key in [0, ``POSITIONS``): its first 8 hex digits."""
    return int(key[:8], 16)


def plan_groups(costs: dict[str, tuple[int, int]], group_size: int) -> dict[str, int]:
    """Groups per bucket: ``costs`` maps bucket -> (texts, summed ``text_cost``); each bucket
    is cut into ceil(cost / (group_size x mean cost per text)) groups, at least 1."""
    if group_size <= 0:
        raise ValueError(f"group size must be positive, got {group_size}")
    texts = sum(n for n, _ in costs.values())
    total = sum(c for _, c in costs.values())
    if not texts:
        return {}
    group_cost = group_size * total / texts
    return {b: max(1, math.ceil(c / group_cost)) for b, (_, c) in sorted(costs.items())}


def group_key(text: str, key: str, plan: dict[str, int]) -> str:
    """The embedding group of a text: ``<bucket>/<i>-of-<n>`` (``n`` from ``plan``, 1 for a
    bucket the plan lacks), ``i`` the key's range."""
    bucket = length_bucket(text)
    n = plan.get(bucket, 1)
    return f"{bucket}/{key_position(key) * n // POSITIONS:04d}-of-{n:04d}"


def encode_order(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(key, text) pairs deduplicated and sorted by (length, key): the deterministic batch order."""
    unique = dict(items)
    return sorted(unique.items(), key=lambda kv: (len(kv[1]), kv[0]))
