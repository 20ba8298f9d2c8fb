"""One run per output folder: a lock file naming its owner.

Contract: ``OutputLock(output)`` used as a context manager creates ``OUTPUT/.kalm-data/lock``
holding the owner's pid, host, start time and command, and removes it on exit (only while it
still holds this run's token). A second run on the same output gets a ``UsageError`` naming the
owner. A lock left by a dead process on this host is taken over with a warning. On a local disk
the lock is created atomically (``O_EXCL``); object stores have no atomic create, so there it is
a best-effort check.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import uuid

from kalm_data.errors import UsageError

log = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    """The lock of one output folder (see module docstring)."""

    def __init__(self, output: str):
        import fsspec

        self.output = output
        self.fs, root = fsspec.core.url_to_fs(output)
        self.path = f"{root.rstrip('/')}/.kalm-data/lock"
        self.local = "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        )
        self.owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join(sys.argv),
            "token": uuid.uuid4().hex,
        }

    def _create(self) -> bool:
        """Write the lock file unless one exists; True when this run now holds it."""
        data = json.dumps(self.owner).encode()
        self.fs.makedirs(self.path.rsplit("/", 1)[0], exist_ok=True)
        if not self.local:
            if self.fs.exists(self.path):
                return False
            with self.fs.open(self.path, "wb") as f:
                f.write(data)
            return True
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return True

    def _holder(self) -> dict:
        try:
            with self.fs.open(self.path, "rb") as f:
                holder = json.loads(f.read() or b"{}")
        except (OSError, ValueError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def __enter__(self) -> OutputLock:
        if self._create():
            return self
        holder = self._holder()
        pid = holder.get("pid")
        same_host = self.local and holder.get("host") == self.owner["host"]
        if same_host and isinstance(pid, int) and not _alive(pid):
            log.warning("taking over the lock of a dead run (pid %d): %s", pid, self.path)
            self.fs.rm(self.path)
            if self._create():
                return self
            holder = self._holder()
        raise UsageError(
            f"--output {self.output} is in use by another kalm-data run "
            f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
            f"started {holder.get('started', '?')}); wait for it to finish, or delete "
            f"{self.path} if that run is gone"
        )

    def __exit__(self, *exc) -> None:
        if self._holder().get("token") == self.owner["token"]:
            self.fs.rm(self.path)
        folder = self.path.rsplit("/", 1)[0]
        if self.fs.exists(folder) and not self.fs.ls(folder):
            self.fs.rmdir(folder)  # leave no trace in a folder that now holds nothing of ours
