"""Running a pipeline so that Ctrl-C stops it at once, on any runner.

Why: the DirectRunner's ``pipeline.run()`` blocks the main thread in a lock wait until a whole
bundle is done; a SIGINT that the kernel hands to one of the runner's gRPC threads is only seen
when that wait ends (minutes later, for a bucket of texts to embed), so Ctrl-C looked ignored.

Contract: ``run_interruptibly(pipeline)`` runs and waits for ``pipeline`` in a helper thread
while the main thread wakes every 0.2 s, so a SIGINT raises ``KeyboardInterrupt`` promptly.
It then cancels the job where the runner can (Dataflow, Dask), terminates the SDK worker
processes this run started (the DirectRunner's ``multi_processing`` workers and any teacher
child process, ``WORKER_MARKS``) and re-raises.
Whatever the pipeline's transforms finished before (cache files, staged parts) stays on disk.
A pipeline error is re-raised as is.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Command-line marks of the processes a run starts and ``_stop`` ends: the DirectRunner's SDK
#: workers, and the teacher's child process (``kalm_data.embed.teacher_process``, started by an
#: in-process worker or by each SDK worker); without it a teacher child would outlive Ctrl-C
#: until its parent-watch noticed (up to a second, or longer in a long batch).
WORKER_MARKS = ("sdk_worker_main", "kalm_data.embed.teacher_process")


def _children() -> dict[int, str]:
    """pid -> command line of every process whose parent is this process or one of those
    (Linux ``/proc``; empty elsewhere)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    parent_of, cmdline = {}, {}
    for name in filter(str.isdigit, names):
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as f:
                parent_of[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline[int(name)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
    family, grew = {os.getpid()}, True
    while grew:
        new = {pid for pid, parent in parent_of.items() if parent in family} - family
        family |= new
        grew = bool(new)
    family.discard(os.getpid())
    return {pid: cmdline.get(pid, "") for pid in family}


def _quiet_worker_threads() -> None:
    """The runner's ``run_worker`` threads raise when their worker is stopped: log those at
    debug level instead of printing a traceback per worker."""
    previous = threading.excepthook

    def hook(args) -> None:
        if args.thread is not None and args.thread.name == "run_worker":
            log.debug("worker thread ended: %s", args.exc_value)
            return
        previous(args)

    threading.excepthook = hook


def _stop(result, before: set[int]) -> None:
    if result is not None:
        try:
            result.cancel()
        except Exception as e:  # noqa: BLE001 - not every runner can cancel; stopping anyway
            log.debug("cancel: %s", e)
    _quiet_worker_threads()
    workers = [
        pid
        for pid, cmd in _children().items()
        if pid not in before and any(mark in cmd for mark in WORKER_MARKS)
    ]
    for pid in workers:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            continue
    if workers:
        log.info("stopped %d worker process(es)", len(workers))


def run_interruptibly(pipeline, tick: Callable[[], None] | None = None):
    """Run ``pipeline`` and wait for it (see module docstring); returns its result.
    ``tick`` (e.g. a progress display) is called on every wake-up of the main thread."""
    before = set(_children())
    box: dict = {}

    def target() -> None:
        try:
            box["result"] = pipeline.run()
            box["result"].wait_until_finish()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            box["error"] = e

    thread = threading.Thread(target=target, name="kalm-data-pipeline", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
            if tick is not None:
                tick()
    except KeyboardInterrupt:
        _stop(box.get("result"), before)
        raise
    if "error" in box:
        raise box["error"]
    return box["result"]
