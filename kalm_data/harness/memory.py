"""Giving freed memory back to the OS, where glibc keeps it.

Why: glibc's malloc keeps the pages of freed blocks in its heaps (arenas) for reuse. The
teacher frees and reallocates hundreds of MB of activations per batch, in blocks of changing
sizes, so a worker's RSS climbs to well above what one batch needs and stays there.

- ``release_free_memory()``: ``malloc_trim(0)``, returning the free pages of every arena to the
  OS. The teacher calls it after each forward batch: on 5,000 pairs (``bench_scaling.py``, 2
  worker processes) the workers peaked at 1,521 and 1,179 MB instead of 1,665 and 1,385, the
  run's total at 3,362 MB instead of 3,788, in the same time (169.8 s against 174.9 s).
- ``limit_malloc_arenas(n)``: ``mallopt(M_ARENA_MAX, n)``, for a process whose Beam worker
  threads encode in parallel (``--direct_running_mode multi_threading``): each thread would get
  its own arena, settling at its own high-water mark. On 2,000 pairs with two worker threads,
  peak RSS went from 2,015 MB to 1,620 MB, with the same rows.

Both return whether they could act and never raise: no-ops returning False off glibc (macOS,
musl); ``limit_malloc_arenas`` also when ``MALLOC_ARENA_MAX`` is set (the user's choice wins).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's malloc.h


@functools.cache
def _libc():
    """glibc's ``CDLL``, or None where there is none (looked up once). Looked up among the
    symbols the process already has loaded: ``ctypes.util.find_library`` would run ``ldconfig
    -p`` in a child process, forked from a process that may hold gigabytes at that moment (the
    first trim comes after the teacher's first batch)."""
    try:
        lib = ctypes.CDLL(None)
        lib.malloc_trim.argtypes = [ctypes.c_size_t]
        lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return lib


def release_free_memory() -> bool:
    """Return the free pages of malloc's heaps to the OS (see module docstring)."""
    lib = _libc()
    if lib is None:
        return False
    lib.malloc_trim(0)
    return True


def limit_malloc_arenas(n: int = 2) -> bool:
    """Cap glibc's malloc arenas at ``n`` (see module docstring); True when set."""
    if n < 1:
        raise ValueError(f"arenas must be >= 1, got {n}")
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    lib = _libc()
    if lib is None:
        return False
    ok = bool(lib.mallopt(M_ARENA_MAX, n))
    if ok:
        log.debug("malloc arenas capped at %d", n)
    return ok
