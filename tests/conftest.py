"""Shared fixtures: the real MiniLM teacher, a private embedding cache."""

import pytest


@pytest.fixture(scope="session")
def teacher():
    from kalm_data.embed.teacher import Teacher, default_teacher

    return Teacher(default_teacher())


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("KALM_DATA_CACHE", str(path))
    return path


@pytest.fixture()
def fill_cache(teacher, tmp_path):
    """fill(texts) -> (cache root, fingerprint): ``texts`` encoded by the teacher and stored in a
    fresh embedding cache, bucket by bucket, as the embedding stage stores them."""
    from kalm_data.embed.buckets import length_bucket
    from kalm_data.embed.cache import EmbeddingCache
    from kalm_data.text import text_key

    def fill(texts, fingerprint: str = "test-teacher") -> tuple[str, str]:
        root = str(tmp_path / "filled-cache")
        cache = EmbeddingCache(root, fingerprint)
        by_bucket: dict[str, list[str]] = {}
        for t in sorted(set(texts)):
            by_bucket.setdefault(length_bucket(t), []).append(t)
        for bucket, group in by_bucket.items():
            cache.put(bucket, [text_key(t) for t in group], teacher.encode(group))
        return root, fingerprint

    return fill
