"""Equal-cost embedding groups and the key-ranged embedding cache, on real texts."""

from __future__ import annotations

import numpy as np
import pytest

from kalm_data.embed.buckets import (
    group_key,
    key_position,
    length_bucket,
    plan_groups,
    text_cost,
)
from kalm_data.embed.cache import EmbeddingCache
from kalm_data.text import normalize, text_key

from realdata import load_pairs


@pytest.fixture(scope="module")
def texts() -> list[tuple[str, str]]:
    rows = load_pairs(3000)
    unique = {normalize(t) for r in rows for t in (r["query"], r["positive"])}
    return sorted((text_key(t), t) for t in unique)


def _costs(texts):
    costs: dict[str, tuple[int, int]] = {}
    for _, t in texts:
        n, c = costs.get(length_bucket(t), (0, 0))
        costs[length_bucket(t)] = (n + 1, c + text_cost(t))
    return costs


def test_groups_have_about_equal_cost_on_real_texts(texts):
    plan = plan_groups(_costs(texts), 128)
    target = 128 * sum(text_cost(t) for _, t in texts) / len(texts)
    groups: dict[str, int] = {}
    for k, t in texts:
        g = group_key(t, k, plan)
        groups[g] = groups.get(g, 0) + text_cost(t)
    assert len(groups) == sum(plan.values())
    assert len(groups) > len(plan)  # large buckets are cut into several groups
    # No group is much costlier than the target, whatever its bucket: the slowest worker
    # finishes at most about one group after the others.
    assert max(groups.values()) < 1.5 * target
    # (4 hash shards per bucket, the old layout, made groups of up to 3x the target here.)
    split = [c for g, c in groups.items() if not g.endswith("-of-0001")]
    assert min(split) > 0.4 * target


def test_a_group_holds_one_key_range_and_the_plan_is_pure(texts):
    plan = plan_groups(_costs(texts), 64)
    assert plan == plan_groups(dict(reversed(list(_costs(texts).items()))), 64)
    by_group: dict[str, list[int]] = {}
    for k, t in texts:
        by_group.setdefault(group_key(t, k, plan), []).append(key_position(k))
    for g, positions in by_group.items():
        i, n = (int(x) for x in g.split("/")[1].split("-of-"))
        assert all(i * 2**32 // n <= p * 1 < (i + 1) * 2**32 // n + 1 for p in positions)
    with pytest.raises(ValueError, match="group size"):
        plan_groups(_costs(texts), 0)
    assert plan_groups({}, 10) == {}


def test_cache_opens_only_files_whose_key_range_overlaps(tmp_path, texts):
    cache = EmbeddingCache(str(tmp_path), "fp")
    keys = sorted((k for k, _ in texts[:400]), key=key_position)
    low, high = keys[:200], keys[200:]
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((400, 8)).astype(np.float32)
    cache.put("len10", low, vectors[:200])
    cache.put("len10", high, vectors[200:])
    # Spoil the file of the high keys: asking for low keys must not open it.
    (high_file,) = [
        p
        for p in (tmp_path / "fp" / "len10").iterdir()
        if p.name.startswith(f"{key_position(high[0]):08x}")
    ]
    high_file.write_bytes(b"not an npz file")
    got = cache.get("len10", low[10:50])
    assert set(got) == set(low[10:50])
    np.testing.assert_array_equal(got[low[10]], vectors[10])
    with pytest.raises(Exception):  # noqa: B017 - numpy's error for a spoilt file
        cache.get("len10", high[:5])
