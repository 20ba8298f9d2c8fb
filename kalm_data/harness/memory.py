"""Fewer malloc arenas for a process whose Beam worker threads encode in parallel
(``--direct_running_mode multi_threading``).

Why: glibc gives each thread that allocates concurrently its own arena (up to 8 per core), and
an arena keeps the pages of freed blocks. Two encoding threads each free and reallocate
hundreds of MB of activations per batch, so each arena settles at its own high-water mark. Two
arenas for the whole process hold the same work in less memory: on 2,000 pairs curate's peak
RSS went from 2,015 MB to 1,620 MB, with the same rows (``benchmarks/bench_scaling.py``, README
"Speed").

Contract: ``limit_malloc_arenas(n)`` caps the arenas glibc creates from now on (``mallopt
M_ARENA_MAX``), and returns whether it could; it never raises. A no-op returning False off
glibc (macOS, musl) and when ``MALLOC_ARENA_MAX`` is already set in the environment (the user's
choice wins).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(n: int = 2) -> bool:
    """Cap glibc's malloc arenas at ``n`` (see module docstring); True when set."""
    if n < 1:
        raise ValueError(f"arenas must be >= 1, got {n}")
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = bool(mallopt(M_ARENA_MAX, n))
    if ok:
        log.debug("malloc arenas capped at %d", n)
    return ok
