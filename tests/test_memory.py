"""The malloc arena cap of threaded local runs (``kalm_data.harness.memory``)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from kalm_data.harness.memory import limit_malloc_arenas

CALL = "from kalm_data.harness.memory import limit_malloc_arenas as f; print(f(2))"


def _run(env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", CALL], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_the_cap_is_set_on_glibc_unless_the_user_set_one():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _run(env) == "True"
    assert _run({**env, "MALLOC_ARENA_MAX": "4"}) == "False"


def test_a_cap_below_one_is_an_error():
    with pytest.raises(ValueError, match="arenas"):
        limit_malloc_arenas(0)


TRIM = """
import numpy as np
from kalm_data.harness.memory import release_free_memory

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

blocks = [np.ones(8192) for _ in range(4000)]  # 64 KB each, from malloc's heap
pin = np.ones(8192)  # allocated last: keeps the heap from shrinking on its own
del blocks
before = rss_mb()
done = release_free_memory()
print(done, before - rss_mb())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_released_memory_leaves_the_process():
    out = subprocess.run([sys.executable, "-c", TRIM], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    done, freed_mb = out.stdout.split()
    assert done == "True" and float(freed_mb) > 100  # of the 250 MB freed


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_the_trim_starts_no_child_process(monkeypatch):
    """The first trim comes when a worker holds its teacher and a batch: a child process forked
    then (``find_library`` runs ``ldconfig -p``) would copy the whole worker's page tables."""
    from kalm_data.harness import memory

    def refuse(*args, **kwargs):
        raise AssertionError(f"a child process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    memory._libc.cache_clear()
    try:
        assert memory.release_free_memory()
    finally:
        memory._libc.cache_clear()
