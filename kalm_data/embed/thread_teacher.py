"""One teacher per worker thread, kept from one bundle to the next.

Why: Beam's Dask runner runs ``setup``, the bundle and ``teardown`` for every partition
(``apache_beam.runners.dask.transform_evaluator.apply_dofn_to_bundle``), so a teacher held by
the ``DoFn`` was loaded again for every embedding bundle. Beam's own answer for models,
``apache_beam.utils.shared.Shared`` (what ``RunInference`` uses), keeps one object per process
for all threads; a teacher is not safe to share that way (a fast tokenizer raises "Already
borrowed" when two threads encode at once, and a ``TeacherProcess`` has one pipe), and one
per process would leave a worker's other threads idle. So each thread keeps its own, as each
thread had its own ``DoFn`` before, and no thread ever loads one twice.

Contract: ``teacher_for_thread(key, make)`` returns the teacher this thread holds under
``key``, or calls ``make()`` once and holds its result. A thread holds one teacher: asking for
another ``key`` closes the one it held (a ``TeacherProcess``'s child exits) before making the
new one. ``release_thread_teacher()`` closes and forgets it. A held teacher lives as long as
its thread (a Dask worker's threads live as long as the worker; a ``TeacherProcess``'s child
exits with its parent).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

_held = threading.local()


def teacher_for_thread(key: Hashable, make: Callable[[], Any]) -> Any:
    """The teacher this thread holds under ``key``, made by ``make()`` on first use."""
    held = getattr(_held, "teacher", None)
    if held is not None and held[0] == key:
        return held[1]
    release_thread_teacher()
    teacher = make()
    _held.teacher = (key, teacher)
    return teacher


def release_thread_teacher() -> None:
    """Close and forget the teacher this thread holds, if any."""
    held = getattr(_held, "teacher", None)
    _held.teacher = None
    if held is not None:
        held[1].close()
