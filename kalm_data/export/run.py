"""Run an export: a curated folder in, one trainer's format out.

    kalm-data export curated/ --to sentence-transformers --output st/
    kalm-data export curated/ --to flagembedding --output fe/ --num-negatives 7

Contract: ``run_export`` checks what it can before writing anything (the target and file
format, ``--num-negatives``, DIR's manifest, OUT: ``kalm_data.export.output.check_output``),
then for each task of DIR's manifest plans the task file, converts every example (counting the
rows written, the rows added by splitting multi-positive examples, and the examples dropped per
reason) into the staging folder, writes the target's extra files, and commits. It returns the
record written as OUT/export.json. A task left without a row gets no file and is listed under
``empty_tasks``; when no task has a row it raises ``UsageError`` and OUT is unchanged. Errors a
user can fix are ``UsageError`` (one line); DIR is only read.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kalm_data import __version__
from kalm_data.errors import UsageError
from kalm_data.export.files import open_task_file
from kalm_data.export.output import MARK, check_output, commit, staging, write_json
from kalm_data.export.source import SourceTask, open_source, task_rows
from kalm_data.export.target import (
    NO_QUERY_OR_POSITIVE,
    Drop,
    ExportOptions,
    RowSource,
    Target,
    TaskPlan,
)
from kalm_data.export.to_flagembedding import FlagEmbeddingTarget
from kalm_data.export.to_kalm import KalmTarget
from kalm_data.export.to_sentence_transformers import SentenceTransformersTarget

log = logging.getLogger(__name__)

#: ``--to`` name -> target.
TARGETS: dict[str, Target] = {
    t.name: t for t in (SentenceTransformersTarget(), FlagEmbeddingTarget(), KalmTarget())
}


@dataclass
class TaskCounts:
    """What became of one task's examples."""

    examples: int = 0
    rows: int = 0
    rows_added: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "rows": self.rows,
            "rows_added": self.rows_added,
            "dropped": dict(sorted(self.dropped.items())),
        }


def resolve_target(name: str, file_format: str | None) -> tuple[Target, str]:
    """The target called ``name`` and the file format to write (its default when None)."""
    if name not in TARGETS:
        raise UsageError(f"--to {name}: unknown target (one of {', '.join(TARGETS)})")
    target = TARGETS[name]
    if file_format is None:
        return target, target.file_formats[0]
    if file_format not in target.file_formats:
        raise UsageError(
            f"--format {file_format}: {name} is written as {' or '.join(target.file_formats)}"
        )
    return target, file_format


def export_task(
    target: Target, task: SourceTask, rows: RowSource, options: ExportOptions, stage: Path
) -> tuple[TaskPlan, TaskCounts, bool]:
    """Write one task into ``stage``: (its plan, its counts, whether a file was written)."""
    plan = target.plan(task, rows, options)
    counts = TaskCounts()
    file = open_task_file(stage / plan.path, options.file_format, plan.schema)
    try:
        for row in rows():
            counts.examples += 1
            out = Drop(NO_QUERY_OR_POSITIVE) if row is None else target.convert(row, plan)
            if isinstance(out, Drop):
                counts.drop(out.reason)
                continue
            file.write(out)
            counts.rows += len(out)
            counts.rows_added += len(out) - 1
    finally:
        file.close()
    return plan, counts, file.written


def _totals(counts: list[TaskCounts]) -> dict[str, Any]:
    total = TaskCounts()
    for c in counts:
        total.examples += c.examples
        total.rows += c.rows
        total.rows_added += c.rows_added
        for reason, n in c.dropped.items():
            total.dropped[reason] = total.dropped.get(reason, 0) + n
    return total.as_dict()


def run_export(
    source: str,
    output: str,
    target_name: str,
    num_negatives: int | None = None,
    file_format: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export the curated folder ``source`` to ``output``; returns the export.json record."""
    target, file_format = resolve_target(target_name, file_format)
    if num_negatives is not None and num_negatives < 0:
        raise UsageError(f"--num-negatives {num_negatives}: must be 0 or more")
    src = open_source(source)
    replaced = check_output(output, source, overwrite, target.extra_names)
    options = ExportOptions(num_negatives=num_negatives, file_format=file_format)
    tasks: dict[str, Any] = {}
    empty: dict[str, Any] = {}
    plans: dict[str, TaskPlan] = {}
    all_counts: list[TaskCounts] = []
    with staging(output) as stage:
        for task in src.tasks:
            rows = functools.partial(task_rows, src, task)
            plan, counts, written = export_task(target, task, rows, options, stage)
            all_counts.append(counts)
            if written:
                plans[task.name] = plan
                tasks[task.name] = {"path": plan.path, **plan.info, **counts.as_dict()}
            else:
                empty[task.name] = counts.as_dict()
            log.info("%s: %d examples -> %d rows", task.name, counts.examples, counts.rows)
        if not plans:
            raise UsageError(
                f"no example of {source} fits the {target.name} format "
                f"(dropped: {_totals(all_counts)['dropped']}); nothing was written"
            )
        files = [plan.path for plan in plans.values()]
        for name, obj in target.extra_files(plans).items():
            write_json(stage / name, obj)
            files.append(name)
        record = {
            MARK: __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "format": target.name,
            "file_format": file_format,
            "source": source if "://" in source else os.path.abspath(source),
            "source_created": src.created,
            "num_negatives": num_negatives,
            "counts": _totals(all_counts),
            "tasks": tasks,
            "empty_tasks": empty,
            "load": target.load_hint(output.rstrip("/")),
        }
        commit(output, stage, files, record, replaced)
    return {**record, "complete": True, "files": sorted(files)}
