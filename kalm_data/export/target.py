"""What an export target is: the contract each ``to_<format>`` module implements.

A target writes each curated task as one file of its trainer's format. For every task:

1. ``plan(task, rows, options)`` decides what the task's file looks like before a row is
   written and returns a ``TaskPlan`` (its path under OUT, its Arrow schema when the file is
   Parquet, and what export.json records about the task). ``rows`` is a function that returns
   a fresh iterator over the task's examples: a target that must look at the data first (the
   number of negatives columns, say) calls it; the others do not, and the data is read once.
2. ``convert(row, plan)`` turns one curated example into the records of the file (one or more),
   or a ``Drop`` naming why the format cannot hold it. A target never invents text: an example
   that does not fit is dropped and counted, not padded.

``extra_files(plans)`` returns the JSON files the target writes next to ``data/`` (for example
the prompts of sentence-transformers), keyed by file name. Targets are pure: no file system,
no logging; the runner (``kalm_data.export.run``) does the reading, writing and counting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

    from kalm_data.export.source import SourceTask
    from kalm_data.train.data import TrainRow

#: Drop reasons shared by the targets (each target may add its own constants).
NO_QUERY_OR_POSITIVE = "no_query_or_positive"
NO_NEGATIVES = "no_negatives"

#: A function returning a fresh iterator over one task's examples (None: unusable example).
RowSource = Callable[[], Iterator["TrainRow | None"]]


@dataclass(frozen=True)
class ExportOptions:
    """What the user asked for: ``num_negatives`` (None: the target's default) and the file
    format of the task files (``"parquet"`` or ``"jsonl"``)."""

    num_negatives: int | None
    file_format: str


@dataclass(frozen=True)
class Drop:
    """An example the target cannot write, and why (a reason constant)."""

    reason: str


@dataclass(frozen=True)
class TaskPlan:
    """How one task is written: ``path`` relative to OUT, the Parquet ``schema`` (None for
    JSONL), ``info`` (JSON-able, recorded in export.json) and ``settings`` (what ``convert``
    needs: negatives kept, prompt, ...)."""

    path: str
    schema: pa.Schema | None = None
    info: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


class Target(Protocol):
    """An export format (see the module docstring)."""

    #: The ``--to`` name.
    name: str
    #: File formats it can write; the first is the default.
    file_formats: tuple[str, ...]
    #: The files ``extra_files`` writes next to ``data/`` (known before the export runs).
    extra_names: tuple[str, ...]

    def plan(self, task: SourceTask, rows: RowSource, options: ExportOptions) -> TaskPlan: ...

    def convert(self, row: TrainRow, plan: TaskPlan) -> list[dict[str, Any]] | Drop: ...

    def extra_files(self, plans: dict[str, TaskPlan]) -> dict[str, Any]: ...

    def load_hint(self, output: str) -> str: ...


def cap_negatives(row: TrainRow, n: int | None) -> tuple[list[str], list[float] | None]:
    """The row's first ``n`` negatives (all when ``n`` is None) and their aligned scores.

    Curate's order is kept: given negatives first, then the mined ones nearest first.
    """
    negatives = row.negatives if n is None else row.negatives[:n]
    scores = row.negative_scores
    return list(negatives), None if scores is None else list(scores[: len(negatives)])


class JsonlListTarget:
    """Shared by the JSONL targets whose lines hold lists (``pos``, ``neg``): one file per task,
    ``--num-negatives`` a cap, one line per example; subclasses build the line."""

    file_formats = ("jsonl",)
    extra_names: tuple[str, ...] = ()

    def plan(self, task, rows: RowSource, options: ExportOptions) -> TaskPlan:
        n = options.num_negatives
        return TaskPlan(
            path=f"data/{task.folder}.jsonl",
            info={"max_negatives": n},
            settings={"negatives": n},
        )

    @staticmethod
    def unusable(row: TrainRow, n: int | None) -> Drop | None:
        """Why ``row`` cannot be a line (no positive; no negative while negatives are asked
        for: both trainers divide by ``len(neg)``), or None."""
        if not row.positives:
            return Drop(NO_QUERY_OR_POSITIVE)
        if not row.negatives and n != 0:
            return Drop(NO_NEGATIVES)
        return None

    def extra_files(self, plans: dict[str, TaskPlan]) -> dict:
        return {}
