"""Records of the generate pipeline.

- ``TaskDef``: one task definition to write an example for: brainstormed by the LLM from a
  persona (two-stage types) or fixed (``sts``, ``bitext``). The funnel's unit: every
  ``TaskDef`` ends as one generated pair or one rejected record; a brainstorm that fails is one
  rejected record.
- ``ExampleJob``: a ``TaskDef`` with its sampled diversity settings and output language(s).
- ``GeneratedPair``: a validated generated example, as ``generate`` writes it to
  ``data/<task>/part-*.parquet`` (``curate`` reads these files as input pairs: fields
  ``query``, ``positive``, ``negative``, ``instruction``, ``task_type``, ``id``).

Provenance: ``source_file``/``source_row`` name the persona row the task came from (for
single-stage types: ``synthetic:<type>`` and the request's number).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from kalm_data.records import SCHEMA_VERSION


class TaskDef(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    task_type: str
    definition: str
    persona_id: str | None = None
    source_file: str
    source_row: int


class ExampleJob(BaseModel):
    model_config = ConfigDict(frozen=True)

    task: TaskDef
    language: str  # "en", or "en-zh" for bitext (source-target)
    settings: dict[str, str] = Field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.task.id

    @property
    def name(self) -> str:
        """The output task: ``<task type>-<language>`` (the pool ``curate`` mines in)."""
        return f"{self.task.task_type}-{self.language}"


class GeneratedPair(BaseModel):
    """One row of ``data/<task>/part-*.parquet`` written by ``generate``."""

    schema_version: str = SCHEMA_VERSION
    id: str
    task: str
    task_type: str
    language: str
    instruction: str
    query: str
    positive: str
    negative: str | None = None
    settings: str = Field(description="the diversity settings of the request, as JSON")
    persona_id: str | None = None
    generator: str
    source_file: str
    source_rows: list[int]
