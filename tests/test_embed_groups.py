"""Key-range embedding groups sized by cost, and the key-ranged embedding cache, on real texts."""

from __future__ import annotations

import numpy as np
import pytest

from kalm_data.embed.buckets import (
    POSITIONS,
    group_key,
    key_position,
    length_bucket,
    ranges_for,
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


def _group_costs(texts, group) -> dict[str, int]:
    costs: dict[str, int] = {}
    for k, t in texts:
        g = group(k, t)
        costs[g] = costs.get(g, 0) + text_cost(t)
    return costs


def test_no_group_is_a_large_share_of_the_work_on_real_texts(texts):
    """The old layout (4 hash shards per bucket) left the costliest group 6% of all the work;
    cost-sized key ranges cut it to about 2%, so two workers finish close together."""
    new = _group_costs(texts, lambda k, t: group_key(t, k, 16))
    old = _group_costs(texts, lambda k, t: f"{length_bucket(t)}/{key_position(k) % 4}")
    total = sum(new.values())
    assert sum(old.values()) == total
    assert max(old.values()) / total > 0.05
    assert max(new.values()) / total < 0.03
    assert len(new) > 2 * len(old)


def test_costlier_buckets_get_more_ranges_and_a_group_is_one_key_range(texts):
    assert ranges_for("len04", 16) < ranges_for("len14", 16) < ranges_for("len22", 16) == 16
    assert ranges_for("len26", 16) == 16 and ranges_for("len00", 1) == 1
    with pytest.raises(ValueError, match="ranges must be positive"):
        ranges_for("len10", 0)
    for k, t in texts:
        bucket, part = group_key(t, k, 16).split("/")
        i, n = (int(x) for x in part.split("-of-"))
        assert bucket == length_bucket(t) and n == ranges_for(bucket, 16)
        assert i * POSITIONS // n <= key_position(k) < (i + 1) * POSITIONS // n + 1


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


def test_cache_skips_a_file_between_the_keys_asked_for(tmp_path, texts):
    # A task's keys spread over the whole key space: a file whose range holds none of them is
    # not opened, even when it lies between two that do.
    cache = EmbeddingCache(str(tmp_path), "fp")
    keys = sorted((k for k, _ in texts[:300]), key=key_position)
    parts = keys[:100], keys[100:200], keys[200:]
    vectors = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    for i, part in enumerate(parts):
        cache.put("len10", list(part), vectors[100 * i : 100 * (i + 1)])
    (middle,) = [
        p
        for p in (tmp_path / "fp" / "len10").iterdir()
        if p.name.startswith(f"{key_position(parts[1][0]):08x}")
    ]
    middle.write_bytes(b"not an npz file")
    asked = [*parts[0][:5], *parts[2][-5:]]
    got = cache.get("len10", asked)
    assert set(got) == set(asked)
    np.testing.assert_array_equal(got[parts[2][-1]], vectors[-1])
    assert cache.cached_keys("len10", [*asked, "f" * 64]) == set(asked)
