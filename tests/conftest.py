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
