"""Live progress of a running pipeline, on any runner whose workers see the run's folder.

Workers call ``report(root, stage, name=count, ...)``: the counts add up per process and, at
most once a second (and at ``flush``), are written atomically to
``ROOT/_progress/<host>-<pid>.json``. The main process's ``ProgressDisplay`` sums those files
and draws one status line: redrawn in place on a terminal, a new line every ``every`` seconds
otherwise (CI, a log file). Progress is for people: the manifest's counts come from the files
written, never from here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
from typing import TextIO

FLUSH_SECONDS = 1.0
_reporters: dict[str, _Reporter] = {}
_lock = threading.Lock()


class _Reporter:
    def __init__(self, root: str):
        self.path = f"{root.rstrip('/')}/_progress/{socket.gethostname()}-{os.getpid()}.json"
        self.counts: dict[str, int] = {}
        self.times: dict[str, list[float]] = {}  # stage -> [first, last] report (epoch s)
        self.lock = threading.Lock()
        self.written = 0.0

    def add(self, stage: str, counts: dict[str, int]) -> None:
        with self.lock:
            now = time.time()
            self.times.setdefault(stage, [now, now])[1] = now
            for name, n in counts.items():
                key = f"{stage}.{name}"
                self.counts[key] = self.counts.get(key, 0) + int(n)
            if time.monotonic() - self.written >= FLUSH_SECONDS:
                self._write()

    def flush(self) -> None:
        with self.lock:
            self._write()

    def _write(self) -> None:
        from kalm_data.writers.manifest import write_json

        with contextlib.suppress(OSError):  # progress is best effort: never fail a run on it
            write_json({"counts": self.counts, "times": self.times}, self.path)
        self.written = time.monotonic()


def _reporter(root: str) -> _Reporter:
    with _lock:
        if root not in _reporters:
            _reporters[root] = _Reporter(root)
        return _reporters[root]


def report(root: str | None, stage: str, **counts: int) -> None:
    """Add ``counts`` to ``stage``'s progress (no-op without a ``root``)."""
    if root:
        _reporter(root).add(stage, counts)


def flush(root: str | None) -> None:
    """Write this process's counts now (call at the end of a bundle)."""
    if root:
        _reporter(root).flush()


def _files(root: str) -> list[dict]:
    import fsspec

    fs, base = fsspec.core.url_to_fs(f"{root.rstrip('/')}/_progress")
    try:
        paths = fs.glob(f"{base}/*.json")
    except OSError:
        return []
    out = []
    for path in paths:
        try:
            with fs.open(path, "r") as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue  # being replaced; next tick
        if isinstance(data, dict):
            out.append(data)
    return out


def read_totals(root: str) -> dict[str, int]:
    """The counts of every worker process, summed."""
    totals: dict[str, int] = {}
    for data in _files(root):
        for key, n in data.get("counts", {}).items():
            totals[key] = totals.get(key, 0) + int(n)
    return totals


def read_timings(root: str) -> dict[str, float]:
    """Seconds from each stage's first to its last report, over every worker process."""
    spans: dict[str, list[float]] = {}
    for data in _files(root):
        for stage, (first, last) in data.get("times", {}).items():
            span = spans.setdefault(stage, [first, last])
            span[0], span[1] = min(span[0], first), max(span[1], last)
    return {stage: round(last - first, 3) for stage, (first, last) in spans.items()}


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def status_line(totals: dict[str, int], elapsed: float, rate: float | None) -> str:
    """One line: rows through each stage, texts encoded (rate, time left), tasks mined."""
    g = totals.get
    parts = [f"[{_duration(elapsed)}]", f"read {g('read.rows', 0):,}"]
    if "validate.kept" in totals or "validate.rejected" in totals:
        bad = g("validate.rejected", 0) + g("read.rejected", 0)
        parts.append(f"valid {g('validate.kept', 0):,}" + (f" ({bad:,} rejected)" if bad else ""))
    if "merge.kept" in totals:
        parts.append(f"unique {g('merge.kept', 0):,}")
    planned, done = g("embed.planned", 0), g("embed.encoded", 0) + g("embed.cached", 0)
    if planned or done:
        text = f"embed {done:,}/{planned:,}" if planned else f"embed {done:,}"
        if rate:
            text += f" ({rate:,.0f}/s"
            if planned > done:
                text += f", ~{_duration((planned - done) / rate)} left"
            text += ")"
        parts.append(text)
    if "filter.kept" in totals or "filter.rejected" in totals:
        bad = g("filter.rejected", 0)
        parts.append(f"filter {g('filter.kept', 0):,}" + (f" ({bad:,} rejected)" if bad else ""))
    if "mine.tasks" in totals:
        parts.append(f"mined {g('mine.tasks', 0)} task(s): {g('mine.kept', 0):,} kept")
    elif "mine.blocks" in totals:  # --mine-blocks: tasks are mined block by block
        parts.append(f"mined {g('mine.blocks', 0)} block(s): {g('mine.kept', 0):,} kept")
    if "write.rows" in totals:
        parts.append(f"written {g('write.rows', 0):,}")
    return "  ".join(parts)


class ProgressDisplay:
    """Draws ``status_line`` for the run under ``root`` on ``stream`` (see module docstring)."""

    def __init__(self, root: str, stream: TextIO, interactive: bool | None = None, every=30.0):
        self.root, self.stream = root, stream
        self.interactive = stream.isatty() if interactive is None else interactive
        self.every = 0.5 if self.interactive else every
        self.start = time.monotonic()
        self.drawn_at = self.read_at = 0.0
        self.last_line = ""
        self.totals: dict[str, int] = {}
        self.samples: list[tuple[float, int]] = []  # (time, texts encoded), the last minute

    def _rate(self) -> float | None:
        (t0, n0), (t1, n1) = self.samples[0], self.samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 - t0 >= 2.0 and n1 > n0 else None

    def _read(self, now: float) -> None:
        self.read_at = now
        self.totals = read_totals(self.root)
        encoded = self.totals.get("embed.encoded", 0)
        self.samples = [s for s in self.samples if now - s[0] <= 60.0] + [(now, encoded)]

    def tick(self, force: bool = False) -> None:
        """Read the counts every 2 s and redraw when it is time (call often: cheap)."""
        now = time.monotonic()
        if force or now - self.read_at >= 2.0:
            self._read(now)
        if not self.totals or (not force and now - self.drawn_at < self.every):
            return
        self.drawn_at = now
        line = status_line(self.totals, now - self.start, self._rate())
        if self.interactive:
            width = shutil.get_terminal_size().columns - 1  # a wrapped line cannot be redrawn
            self.stream.write("\r" + line[:width] + "\x1b[K")
        elif line.split("]", 1)[1] != self.last_line.split("]", 1)[-1]:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last_line = line

    def close(self) -> None:
        """Draw the final state and end the line."""
        self.tick(force=True)
        if self.interactive and self.last_line:
            self.stream.write("\n")
            self.stream.flush()
