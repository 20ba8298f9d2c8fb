"""The curated folder an export reads: its manifest and each task's rows.

Contract: ``open_source(path)`` reads ``path``/manifest.json (local or any fsspec URL) and
returns the tasks it lists (``manifest["tasks"][task]["folder"]``), sorted by name. It raises
``UsageError`` (one line) when ``path`` is not a folder, has no manifest.json, or the manifest
is not a ``kalm-data curate`` manifest (no ``tasks`` mapping with a folder per task).

``task_rows(source, task)`` yields the task's examples shard by shard (``part-*.parquet`` in
name order, rows in file order), read through the trainer's schema and cleaned exactly as the
trainer cleans them (``kalm_data.train.data.to_row``: negatives equal to the query or to a
positive, or repeated, are removed; scores stay aligned). An example without a query or a
positive yields ``None`` so the caller can count it. A task the manifest lists without any part
file raises ``UsageError`` (an incomplete curate output). Only one shard is held in memory.
Nothing is ever written under ``path``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kalm_data.errors import UsageError

if TYPE_CHECKING:
    from kalm_data.train.data import TrainRow

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class SourceTask:
    """One task of the curated folder, as its manifest lists it."""

    name: str
    folder: str
    examples: int


@dataclass(frozen=True)
class Source:
    """A curated folder: where it is, when curate wrote it, and its tasks (sorted by name)."""

    path: str
    created: str | None
    tasks: tuple[SourceTask, ...]


def _fs(path: str):
    import fsspec

    fs, root = fsspec.core.url_to_fs(path)
    return fs, root.rstrip("/") or "/"


def _read_manifest(path: str) -> dict:
    fs, root = _fs(path)
    if not fs.isdir(root):
        raise UsageError(f"{path} is not a folder (expected a kalm-data curate output)")
    where = f"{root}/{MANIFEST}"
    if not fs.exists(where):
        raise UsageError(
            f"{path} has no {MANIFEST}: not a finished kalm-data curate output "
            "(run `kalm-data curate --output DIR` first)"
        )
    try:
        with fs.open(where, "r", encoding="utf-8") as f:
            manifest = json.load(f)
    except ValueError as err:
        raise UsageError(f"{path}/{MANIFEST} is not valid JSON: {err}") from err
    if not isinstance(manifest, dict) or not isinstance(manifest.get("tasks"), dict):
        raise UsageError(f"{path}/{MANIFEST} is not a kalm-data curate manifest (no 'tasks')")
    return manifest


def _task(name: str, entry: object, path: str) -> SourceTask:
    if not isinstance(entry, dict) or not isinstance(entry.get("folder"), str):
        raise UsageError(f"{path}/{MANIFEST}: task {name!r} has no 'folder'")
    return SourceTask(name=name, folder=entry["folder"], examples=int(entry.get("examples", 0)))


def open_source(path: str) -> Source:
    """The curated folder at ``path`` (see the module docstring for the errors)."""
    manifest = _read_manifest(path)
    tasks = tuple(_task(n, e, path) for n, e in sorted(manifest["tasks"].items()))
    return Source(path=path, created=manifest.get("created"), tasks=tasks)


def shard_urls(source: Source, task: SourceTask) -> list[str]:
    """The task's ``part-*.parquet`` files, sorted by name (URLs keep their protocol)."""
    fs, root = _fs(source.path)
    folder = f"{root}/data/{task.folder}"
    # ls, not glob: a folder name may hold glob characters such as "[".
    names = fs.ls(folder, detail=False) if fs.isdir(folder) else []
    parts = sorted(
        n for n in names if n.rsplit("/", 1)[-1].startswith("part-") and n.endswith(".parquet")
    )
    return [fs.unstrip_protocol(p) for p in parts]


def task_rows(source: Source, task: SourceTask) -> Iterator[TrainRow | None]:
    """The task's examples as the trainer reads them; ``None`` for an unusable one."""
    from kalm_data.train.data import read_columns, to_row

    urls = shard_urls(source, task)
    if not urls:
        raise UsageError(
            f"{source.path}/data/{task.folder}/ holds no part-*.parquet, yet {MANIFEST} lists "
            f"task {task.name!r} ({task.examples} examples): the curate output is incomplete"
        )
    for url in urls:
        for record in read_columns(url).to_pylist():
            yield to_row(record, task.name)
