"""A quiet console: while a pipeline runs, everything that is not ours goes to a log file.

``quiet_console(log_path)`` points file descriptors 1 and 2 (so Beam's worker processes,
C libraries and progress bars of the libraries too), ``sys.stdout``/``sys.stderr`` and the
root logger at ``log_path``, and yields the console stream for our own progress display.
Everything is restored on exit, errors included. With ``verbose`` nothing is redirected: the
logs stay on the console, as before.

Beam's DirectRunner relays each worker's log records to the main process, which logs them
again ("Worker: ... message: ..."): the same line twice. The relayed copies are dropped, since
the workers' own output already reaches the log file. So is Beam's INFO chatter about string
type hints (``TYPEHINT_LOGGER``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator
from typing import TextIO

RELAY_LOGGER = "apache_beam.runners.portability.local_job_service"


#: Beam logs one INFO line per string type hint it cannot resolve ("Converting string literal
#: type hint to Any"): 127 of the 195 lines of a warm curate run's log.
TYPEHINT_LOGGER = "apache_beam.typehints.native_type_compatibility"


class _DropRelayed(logging.Filter):
    """Drops the relayed copies of worker records, and Beam's type-hint chatter below WARNING."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == TYPEHINT_LOGGER:
            return record.levelno >= logging.WARNING
        return not (record.name == RELAY_LOGGER and str(record.msg).startswith("Worker:"))


def _console(stream: TextIO) -> tuple[TextIO, bool]:
    """A stream that still reaches the console once fd 1/2 are redirected, and whether it is a
    duplicate we must close."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return stream, False  # already not a real file (pytest's capture, a notebook)
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace"), True


@contextlib.contextmanager
def quiet_console(log_path: str, verbose: bool = False) -> Iterator[TextIO]:
    """See module docstring; yields the console stream."""
    if verbose:
        yield sys.stderr
        return
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    console, close_console = _console(sys.stderr)
    log_file = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = {fd: os.dup(fd) for fd in (1, 2)}
    saved_streams = sys.stdout, sys.stderr
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    handler = logging.StreamHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_DropRelayed())
    try:
        for fd in (1, 2):
            os.dup2(log_file.fileno(), fd)
        sys.stdout = sys.stderr = log_file
        root.handlers = [handler]
        root.setLevel(min(saved_level or logging.INFO, logging.INFO))
        yield console
    finally:
        log_file.flush()
        sys.stdout, sys.stderr = saved_streams
        for fd, saved in saved_fds.items():
            os.dup2(saved, fd)
            os.close(saved)
        root.handlers, root.level = saved_handlers, saved_level
        log_file.close()
        if close_console:
            console.close()
