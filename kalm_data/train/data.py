"""Read curated task shards (``DIR/data/<task>/part-*.parquet``) into training rows.

Contract: ``load_rows(paths)`` returns every usable row of every shard under each path (local or
any fsspec URL), sorted by (task, id) so the order never depends on the file system's listing.
A row keeps its positives and negatives with the teacher's scores aligned to them. Negatives
equal to the query or to one of the row's positives are removed here (a false negative the
curation missed would teach the model the opposite of the truth); a row without negatives is
kept (KaLM's code raised KeyError on it), a row without positives is dropped and counted.
When no usable row remains (empty shards, or every row dropped), ``load_rows`` raises
``NoTrainingRowsError`` (a ``ValueError``) naming the folders, before any model is loaded.

Shards are read through the schema curate writes them with: ``READ_SCHEMA`` is the
``READ_FIELDS`` subset of ``to_arrow_schema(TrainingExample)`` (the same function the writer
uses, committed as ``schemas/training_example.arrow.txt``), so there is no second list of column
types to keep in step. A shard must hold every one of these columns with a readable type (the
written type, or one of its family that Arrow casts to it: see ``kalm_data.arrow_schema``);
otherwise ``read_shard`` raises ``ShardSchemaError`` (a ``ValueError``) naming the file and each
missing or mistyped column (found from the file's footer, before its data is read) or the column
with a value that does not fit (an integer overflow, say). Null values are allowed and handled
per row as above. Other columns of the shard are not read.

Shards are decoded without Arrow's thread pool (``use_threads=False``): a threaded
``read_table`` on a Python file object can leave pool work behind that aborts the interpreter at
exit with ``terminate called without an active exception`` (apache/arrow#33975, #34314), which a
quick exit (for example an error right after reading) hits often.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pyarrow as pa

from kalm_data.arrow_schema import conform, read_problems, select_fields, to_arrow_schema
from kalm_data.errors import UsageError
from kalm_data.records import TrainingExample

log = logging.getLogger(__name__)

#: The ``TrainingExample`` fields the trainer reads, in this order.
READ_FIELDS = (
    "id",
    "task",
    "task_type",
    "instruction",
    "query",
    "positives",
    "negatives",
    "positive_scores",
    "negative_scores",
)

#: The schema shards are read with: ``READ_FIELDS`` of the schema the writer writes. Built at
#: import, so a field the writer does not write fails at once (``KeyError``).
READ_SCHEMA: pa.Schema = select_fields(to_arrow_schema(TrainingExample), READ_FIELDS)


class NoTrainingRowsError(UsageError, ValueError):
    """The data folders hold no usable training row (empty shards or rows all dropped); the
    command line prints it as one line."""


class ShardSchemaError(UsageError, ValueError):
    """A shard lacks a column of ``READ_SCHEMA`` or holds one with an unreadable type (a shard
    written by another tool, say); the message names the file and every such column, on one
    line."""


@dataclass(slots=True)
class TrainRow:
    """One curated example as the trainer uses it."""

    id: str
    task: str
    task_type: str
    instruction: str | None
    query: str
    positives: list[str]
    negatives: list[str] = field(default_factory=list)
    positive_scores: list[float] | None = None
    negative_scores: list[float] | None = None


def shard_files(path: str) -> list[str]:
    """The Parquet parts under ``path``/data/*/ (URLs keep their protocol), sorted."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(path)
    files = sorted(fs.glob(f"{root.rstrip('/')}/data/*/part-*.parquet"))
    if not files:
        raise FileNotFoundError(f"no task shards under {path}/data/<task>/part-*.parquet")
    return [fs.unstrip_protocol(f) for f in files]


def _aligned(scores: list[float] | None, n: int) -> list[float] | None:
    return list(scores) if scores is not None and len(scores) == n else None


def to_row(record: dict, task_from_path: str) -> TrainRow | None:
    """A ``TrainRow`` from one Parquet record, or None when it has no usable positive."""
    query = record.get("query") or ""
    all_positives = record.get("positives") or []
    pos_keep = [i for i, t in enumerate(all_positives) if t]
    positives = [all_positives[i] for i in pos_keep]
    if not query or not positives:
        return None
    pos_scores = _aligned(record.get("positive_scores"), len(all_positives))
    own = set(positives) | {query}
    negs = record.get("negatives") or []
    neg_scores = _aligned(record.get("negative_scores"), len(negs))
    keep = [i for i, t in enumerate(negs) if t and t not in own and t not in negs[:i]]
    return TrainRow(
        id=str(record.get("id") or ""),
        task=record.get("task") or task_from_path,
        task_type=record.get("task_type") or "retrieval",
        instruction=record.get("instruction"),
        query=query,
        positives=positives,
        negatives=[negs[i] for i in keep],
        positive_scores=[pos_scores[i] for i in pos_keep] if pos_scores is not None else None,
        negative_scores=[neg_scores[i] for i in keep] if neg_scores is not None else None,
    )


def _schema_error(url: str, problems: list[str]) -> ShardSchemaError:
    return ShardSchemaError(
        f"{url} is not a training shard the trainer can read: {'; '.join(problems)} (it reads "
        f"the columns {list(READ_SCHEMA.names)} with the types of the TrainingExample schema, "
        "schemas/training_example.arrow.txt, as kalm-data curate writes them)"
    )


def read_columns(url: str) -> pa.Table:
    """The ``READ_SCHEMA`` columns of one Parquet part, cast to their ``READ_SCHEMA`` types.

    Raises ``ShardSchemaError`` when a column is missing or of an unreadable type.
    """
    import fsspec
    import pyarrow.parquet as pq

    with fsspec.open(url, "rb") as f:
        problems = read_problems(pq.read_schema(f), READ_SCHEMA)  # the footer only
        if problems:
            raise _schema_error(url, problems)
        f.seek(0)
        # No pool work left to abort the exit (see the module docstring).
        table = pq.read_table(f, columns=list(READ_SCHEMA.names), use_threads=False)
    try:
        return conform(table, READ_SCHEMA)
    except ValueError as err:
        raise _schema_error(url, [str(err)]) from err


def read_shard(url: str) -> list[TrainRow]:
    """The usable rows of one Parquet part (see the module docstring for what is dropped)."""
    task_from_path = url.rstrip("/").split("/")[-2]
    rows = [to_row(r, task_from_path) for r in read_columns(url).to_pylist()]
    if any(r is None for r in rows):
        log.warning("%s: %d rows without query or positive skipped", url, rows.count(None))
    return [r for r in rows if r is not None]


def load_rows(paths: list[str]) -> list[TrainRow]:
    """Every usable row under ``paths``, sorted by (task, id, query).

    Raises ``FileNotFoundError`` when a path has no shard, ``ShardSchemaError`` when a shard
    lacks a column or holds one of the wrong type, and ``NoTrainingRowsError`` when the shards
    hold no usable row.
    """
    rows: list[TrainRow] = []
    files = [url for path in paths for url in shard_files(path)]
    for url in files:
        rows.extend(read_shard(url))
    if not rows:
        raise NoTrainingRowsError(
            f"no training rows were found in {', '.join(paths)}: the {len(files)} shard file(s) "
            "under data/<task>/ are empty or hold no row with both a query and a positive"
        )
    rows.sort(key=lambda r: (r.task, r.id, r.query))
    tasks = sorted({r.task for r in rows})
    log.info("read %d training rows in %d tasks from %s", len(rows), len(tasks), paths)
    return rows
