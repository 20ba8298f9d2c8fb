"""The teacher in a child process, so that what encoding holds leaves with it.

Why: encoding grows a worker's heap (torch, the model, each batch's activations) and glibc
keeps much of it after the model is dropped, so the mining and writing that follow in the same
process sit on top of that residue: in one in-process worker, the run's peak. A child process
hands all of it back to the OS when it exits, and the Beam worker never imports torch.

Contract: ``TeacherProcess(name, batch_size, threads, precision, token_budget, kernels)`` has
``Teacher``'s ``encode_counting`` (the same bits: the child runs ``Teacher`` with the same
arguments) and ``dim``. The child (``python -m kalm_data.embed.teacher_process``, never a fork of
the worker) starts with the first call and stops on ``close()``, or on its own within a second of
its parent's exit (killed or not); it ignores Ctrl-C, which is the parent's to handle. Messages are
pickles on the child's stdin and stdout; the child's logging and any stray prints go to its stderr,
which is the parent's. A child that dies or fails raises ``TeacherProcessError`` naming its exit
code or its error; the next call starts a new child.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
import sys
from typing import IO, Any

import numpy as np

log = logging.getLogger(__name__)


class TeacherProcessError(RuntimeError):
    """The teacher's child process failed or exited."""


def _send(stream: IO[bytes], message: Any) -> None:
    pickle.dump(message, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next message (a pickle is self-delimiting), or EOFError when the other side has
    closed the pipe, also in the middle of a message."""
    try:
        return pickle.load(stream)
    except pickle.UnpicklingError as e:  # truncated: the writer died while writing
        raise EOFError from e


class TeacherProcess:
    """``Teacher`` in a child process (module docstring)."""

    def __init__(
        self,
        name: str,
        batch_size: int = 32,
        threads: int = 0,
        precision: str = "fp32",
        token_budget: int | None = None,
        kernels: str = "onednn",
    ):
        self.args = (name, batch_size, threads, precision, token_budget, kernels)
        self._child: subprocess.Popen | None = None
        self.dim = 0

    def _start(self) -> subprocess.Popen:
        child = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._child = child
        _send(child.stdin, self.args)
        self.dim = self._reply("load the teacher")
        log.info("teacher process %d started (%d-d)", child.pid, self.dim)
        return child

    def _reply(self, doing: str) -> Any:
        child = self._child
        try:
            status, value = _receive(child.stdout)
        except EOFError:
            code = child.wait()
            self._child = None
            raise TeacherProcessError(
                f"the teacher process exited with code {code} while asked to {doing} "
                "(killed for memory? see its log above)"
            ) from None
        if status == "error":
            self.close()
            raise TeacherProcessError(f"the teacher process failed to {doing}: {value}")
        return value

    def encode_counting(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """``Teacher.encode_counting(texts)``, run in the child."""
        child = self._child or self._start()
        with contextlib.suppress(BrokenPipeError):  # the child is gone: _reply says how
            _send(child.stdin, list(texts))
        return self._reply(f"encode {len(texts)} texts")

    def close(self) -> None:
        """Stop the child (if running) and wait for it; all its memory goes back to the OS."""
        child, self._child = self._child, None
        if child is None:
            return
        with contextlib.suppress(OSError):
            child.stdin.close()
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()

    def __del__(self) -> None:
        self.close()


def _serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """The child's loop: load the teacher, then encode each request until the pipe closes."""
    from kalm_data.embed.teacher import Teacher

    args = _receive(requests)
    try:
        teacher = Teacher(*args)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it
        _send(replies, ("error", f"{type(e).__name__}: {e}"))
        return
    _send(replies, ("ok", teacher.dim))
    while True:
        try:
            texts = _receive(requests)
        except EOFError:
            return
        try:
            _send(replies, ("ok", teacher.encode_counting(texts)))
        except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it
            _send(replies, ("error", f"{type(e).__name__}: {e}"))
            return


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """End this process as soon as its parent is gone (it was killed: its end of the pipe is
    closed, but a long encode would only notice when it replies)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    """Entry point of the child: replies go to the real stdout, anything printed to stderr.
    Ctrl-C is the parent's to handle (it reaches the whole process group): ignored here."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent(os.getppid())
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    logging.basicConfig(level=logging.WARNING, format="teacher process: %(message)s")
    with contextlib.suppress(BrokenPipeError):  # the parent stopped listening: nothing to do
        _serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
