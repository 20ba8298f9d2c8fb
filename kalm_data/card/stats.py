"""Per-task statistics of curated shards: the numbers behind the card, from ``data/`` alone.

Contract: ``task_stats(fs, files, task)`` streams the given ``part-*.parquet`` files of one task
in record batches (``use_threads=False``, see ``kalm_data.train.data`` for why), reading only
the columns it needs; texts become character counts batch by batch, so memory holds numbers,
not texts. It returns a ``TaskStats`` of plain numpy arrays plus a few sample rows.
``describe`` summarises an array the way ``pandas.Series.describe`` does (sample std), plus the
95th percentile; every value is None for an empty array. Nothing here plots or formats.

Definitions (``TrainingExample``): a positive score or negative score is one entry of
``positive_scores`` / ``negative_scores`` (all of them, flattened); the gap of an example is its
best positive score minus its best negative score (examples with at least one negative); the
rank is ``positive_rank``, the 0-based rank of the best positive among the task's pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: Columns streamed from every shard.
NUMBER_COLUMNS = ("query", "positives", "positive_scores", "negative_scores", "positive_rank")
#: Columns of the sample rows shown on the card.
SAMPLE_COLUMNS = (
    "id",
    "query",
    "positives",
    "positive_scores",
    "negatives",
    "negative_scores",
    "negative_ranks",
)
#: Rows read from the first shard to pick samples from and to guess the language with.
SAMPLE_POOL = 64
BATCH_ROWS = 8192

#: The keys of ``describe``, in display order.
SUMMARY_KEYS = ("count", "mean", "std", "min", "25%", "50%", "75%", "95%", "max")


@dataclass
class TaskStats:
    """The numbers of one task. Arrays are per example unless named per text."""

    task: str
    examples: int = 0
    positives_per_example: np.ndarray = field(default_factory=lambda: np.zeros(0))
    negatives_per_example: np.ndarray = field(default_factory=lambda: np.zeros(0))
    query_chars: np.ndarray = field(default_factory=lambda: np.zeros(0))
    positive_chars: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per positive
    positive_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per positive
    negative_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per negative
    gaps: np.ndarray = field(default_factory=lambda: np.zeros(0))  # examples with negatives
    positive_ranks: np.ndarray = field(default_factory=lambda: np.zeros(0))
    samples: list[dict] = field(default_factory=list)  # rows to show, from the first shard
    texts: list[str] = field(default_factory=list)  # first queries and positives (language)


def describe(values: np.ndarray) -> dict[str, float | None]:
    """count, mean, std (sample), min, 25%, 50%, 75%, 95%, max of ``values`` (see module doc)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {"count": 0, **dict.fromkeys(SUMMARY_KEYS[1:])}
    q25, q50, q75, q95 = np.percentile(values, [25, 50, 75, 95])
    return {
        "count": int(values.size),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "min": float(values.min()),
        "25%": float(q25),
        "50%": float(q50),
        "75%": float(q75),
        "95%": float(q95),
        "max": float(values.max()),
    }


def _numpy(array: pa.Array) -> np.ndarray:
    return array.to_numpy(zero_copy_only=False)


def _list_max(lists: pa.Array) -> np.ndarray:
    """The largest value of each list; NaN for an empty list."""
    lengths = _numpy(pc.list_value_length(lists)).astype(np.int64)
    values = _numpy(lists.flatten()).astype(np.float64)
    out = np.full(len(lengths), np.nan)
    nonempty = lengths > 0
    if values.size:
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        # Empty lists hold no values, so consecutive non-empty starts bound exactly one list.
        out[nonempty] = np.maximum.reduceat(values, starts[nonempty])
    return out


def batch_numbers(batch: pa.RecordBatch) -> dict[str, np.ndarray]:
    """The ``TaskStats`` arrays of one batch of ``NUMBER_COLUMNS``."""
    positives = batch.column("positives")
    positive_scores = batch.column("positive_scores")
    negative_scores = batch.column("negative_scores")
    gaps = _list_max(positive_scores) - _list_max(negative_scores)
    return {
        "positives_per_example": _numpy(pc.list_value_length(positives)),
        "negatives_per_example": _numpy(pc.list_value_length(negative_scores)),
        "query_chars": _numpy(pc.utf8_length(batch.column("query"))),
        "positive_chars": _numpy(pc.utf8_length(positives.flatten())),
        "positive_scores": _numpy(positive_scores.flatten()),
        "negative_scores": _numpy(negative_scores.flatten()),
        "gaps": gaps[~np.isnan(gaps)],
        "positive_ranks": _numpy(batch.column("positive_rank")),
    }


def _batches(fs, path: str, columns, batch_size: int = BATCH_ROWS):
    with fs.open(path, "rb") as f:
        parquet = pq.ParquetFile(f)
        yield from parquet.iter_batches(
            batch_size=batch_size, columns=list(columns), use_threads=False
        )


def _sample_rows(fs, path: str) -> list[dict]:
    for batch in _batches(fs, path, SAMPLE_COLUMNS, SAMPLE_POOL):
        return batch.to_pylist()
    return []


def pick_samples(rows: list[dict], n: int = 2) -> list[dict]:
    """The first ``n`` of ``rows`` that have a negative (the first ``n`` rows if too few do)."""
    with_negatives = [r for r in rows if r["negatives"]]
    return (with_negatives if len(with_negatives) >= n else rows)[:n]


def task_stats(fs, files: list[str], task: str) -> TaskStats:
    """The statistics of ``task`` from its shard ``files`` on ``fs`` (see module docstring)."""
    parts: dict[str, list[np.ndarray]] = {}
    for path in files:
        for batch in _batches(fs, path, NUMBER_COLUMNS):
            for name, values in batch_numbers(batch).items():
                parts.setdefault(name, []).append(values)
    arrays = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    pool = _sample_rows(fs, files[0]) if files else []
    return TaskStats(
        task=task,
        examples=len(arrays.get("query_chars", ())),
        samples=pick_samples(pool),
        texts=[t for row in pool for t in (row["query"], *row["positives"])],
        **arrays,
    )
