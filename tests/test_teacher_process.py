"""``kalm_data.embed.teacher_process.TeacherProcess``: the real MiniLM in a real child process
gives the in-process teacher's bits, leaves nothing running when closed, and a child that dies
or cannot load its model is a clear error, not a hang."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from kalm_data.embed.teacher import default_teacher
from kalm_data.embed.teacher_process import TeacherProcess, TeacherProcessError

from realdata import load_pairs


@pytest.fixture(scope="module")
def texts() -> list[str]:
    pairs = load_pairs(60)
    # real questions and answers, plus one far past the model's 256 tokens
    return [t for p in pairs for t in (p["query"], p["positive"])] + ["dose " * 600]


def test_the_child_gives_the_in_process_teachers_bits_and_truncation_count(teacher, texts):
    child = TeacherProcess(default_teacher(), 32, 0, "fp32")
    try:
        vectors, truncated = child.encode_counting(texts)
        pid = child._child.pid
        assert pid != os.getpid()
        os.kill(pid, 0)  # running
        again, _ = child.encode_counting(texts[:5])  # the same child serves every call
        assert child._child.pid == pid
    finally:
        child.close()
    expected, expected_truncated = teacher.encode_counting(texts)
    assert child.dim == teacher.dim == vectors.shape[1]
    assert vectors.dtype == np.float32 and np.array_equal(vectors, expected)
    assert truncated == expected_truncated >= 1
    assert np.array_equal(again, teacher.encode_counting(texts[:5])[0])
    with pytest.raises(ProcessLookupError):  # closed: the child has exited and been reaped
        os.kill(pid, 0)


def test_a_killed_child_is_an_error_naming_its_exit_and_the_next_call_starts_anew(texts):
    child = TeacherProcess(default_teacher(), 32, 1, "fp32")
    try:
        first, _ = child.encode_counting(texts[:8])
        os.kill(child._child.pid, signal.SIGKILL)
        with pytest.raises(TeacherProcessError, match=r"exited with code -9 while asked to encode"):
            child.encode_counting(texts[:8])
        again, _ = child.encode_counting(texts[:8])
        assert np.array_equal(again, first)
    finally:
        child.close()


def test_a_model_the_child_cannot_load_is_an_error_with_the_childs_reason(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    child = TeacherProcess(str(tmp_path))
    with pytest.raises(TeacherProcessError, match="failed to load the teacher: .+"):
        child.encode_counting(["a text"])
    assert child._child is None


def test_an_interrupted_run_stops_the_teacher_child_at_once(texts):
    """Ctrl-C's clean-up (``kalm_data.beam.runner._stop``) ends a teacher child this process
    started during the run, rather than leaving it to notice its parent's exit."""
    from kalm_data.beam.runner import _children, _stop

    before = set(_children())
    child = TeacherProcess(default_teacher(), 32, 0, "fp32")
    child.encode_counting(texts[:3])
    process = child._child
    _stop(None, before)
    assert process.wait(timeout=30) == -signal.SIGTERM  # a hang guard: alive, it would wait
    child.close()  # reaped already: returns at once
