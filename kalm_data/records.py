"""Record types of kalm-data: one pydantic model per record, the single source of every schema.

Contract:
- ``RawRow``: one row as a reader saw it (payload or the error that prevented parsing), with
  its provenance. Readers produce these; nothing is dropped before validation.
- ``InputPair``: a validated input row: a query with one or more positives.
- ``TrainingExample``: a curated example as written to ``data/<task>/part-*.parquet``.
- ``RejectedRecord``: a row or example that left the funnel, with the stage and the reason.

The Arrow schemas (``kalm_data.arrow_schema``) and the JSON Schemas in ``schemas/`` are generated
from these models; bump ``SCHEMA_VERSION`` when a written model changes. 1.1.0: the filter
judges every positive (a training row keeps only its passing positives and the rows carrying
them; a filter rejection is one input row).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = "1.1.0"

#: The six E5 task types (KaLM V1 / E5-mistral) plus "retrieval" for plain (query, passage) data.
TASK_TYPES = (
    "retrieval",
    "short-long",
    "long-short",
    "short-short",
    "long-long",
    "sts",
    "bitext",
)


class RawRow(BaseModel):
    """One input row before validation.

    ``payload`` is the row as a dict (column mapping not yet applied), or None when it could not
    be parsed; ``error`` then says why (for example ``malformed_json: ...``).
    """

    model_config = ConfigDict(frozen=True)

    source_file: str
    source_row: int = Field(
        description="1-based: the line for JSONL/CSV/TSV (the header is line 1), the row for "
        "Parquet and datasets"
    )
    task: str
    payload: dict[str, Any] | None = None
    error: str | None = None
    raw: str | None = Field(default=None, description="the original text of an unparseable row")


class InputPair(BaseModel):
    """A validated input row: a query and its positives (and optional given negatives)."""

    model_config = ConfigDict(frozen=True)

    id: str
    task: str
    query: str
    positives: list[str]
    negatives: list[str] = Field(default_factory=list)
    instruction: str | None = None
    task_type: str = "retrieval"
    source_file: str
    source_row: int
    persona_id: str | None = Field(default=None, description="generated pairs: the persona")
    generator: str | None = Field(default=None, description="generated pairs: the LLM")


class Example(BaseModel):
    """Input pairs of one task merged by query (several positives per query): the unit mined.

    ``source_rows`` / ``source_ids`` list the input rows merged into it, and ``row_positives``
    (aligned with them) the indices into ``positives`` of the positives each row carries, so
    that a positive the filter condemns can be traced back to its row(s). Left empty, it is
    filled for a one-row example (the row carries every positive); a several-row example must
    give it. Every row carries at least one positive and every positive is carried by a row.
    """

    id: str
    task: str
    task_type: str
    instruction: str | None = None
    query: str
    positives: list[str]
    negatives: list[str]
    source_file: str
    source_rows: list[int]
    source_ids: list[str]
    persona_id: str | None = None
    generator: str | None = None
    row_positives: list[list[int]] = Field(
        default_factory=list,
        description="per source row: indices into positives of the positives it carries",
    )

    @model_validator(mode="after")
    def _check_row_positives(self) -> Example:
        n_rows, n_pos = len(self.source_rows), len(self.positives)
        if len(self.source_ids) != n_rows:
            raise ValueError(f"{len(self.source_ids)} source_ids for {n_rows} source_rows")
        if not self.row_positives and n_rows == 1:
            self.row_positives = [list(range(n_pos))]
        if len(self.row_positives) != n_rows:
            raise ValueError(f"row_positives has {len(self.row_positives)} rows, not {n_rows}")
        carried = {i for row in self.row_positives for i in row}
        if any(not row for row in self.row_positives) or carried != set(range(n_pos)):
            raise ValueError(
                f"row_positives {self.row_positives} must give each row at least one of the "
                f"{n_pos} positives and each positive a row"
            )
        return self

    def positive_rows(self, i: int) -> list[int]:
        """Positions (in ``source_rows``) of the rows that carry positive ``i``."""
        return [j for j, row in enumerate(self.row_positives) if i in row]


class TrainingExample(BaseModel):
    """A curated training example: one row of ``data/<task>/part-*.parquet``.

    ``positives`` are the ones the ranking-consistency filter kept (each positive is judged on
    its own; ``source_rows`` / ``source_ids`` are the rows still carrying one). Scores are the
    teacher's cosine similarities to the query, ``positive_scores`` aligned with ``positives``;
    ranks are 0-based among the task pool with all of the example's own positives (kept or not)
    and the query's own text left out. ``positive_rank`` is the rank of the best kept positive;
    ``query_rank`` is the rank of the example's query among all the task's queries when
    searching with that positive (the reverse direction).
    """

    schema_version: str = SCHEMA_VERSION
    id: str
    task: str
    task_type: str
    instruction: str | None = None
    query: str
    positives: list[str]
    negatives: list[str]
    positive_scores: list[float]
    negative_scores: list[float]
    negative_ranks: list[int] = Field(description="-1 for a given (not mined) negative")
    positive_rank: int
    query_rank: int | None = None
    teacher: str
    source_file: str
    source_rows: list[int]
    source_ids: list[str]
    persona_id: str | None = None
    generator: str | None = None


class RejectedRecord(BaseModel):
    """A row or example removed by a stage, with the reason. ``record`` is the original as JSON."""

    schema_version: str = SCHEMA_VERSION
    id: str | None = None
    task: str
    stage: str
    reason: str
    detail: str
    source_file: str
    source_row: int
    rows: int = Field(default=1, description="input rows this rejection accounts for")
    record: str
