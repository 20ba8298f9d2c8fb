"""What an input is: a file, a saved dataset folder or a hub id, with its task and columns.

Shared by every pipeline (curate reads pairs and corpus files with it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The fields a column mapping may name (``--map query=question,positive=answer``).
MAPPABLE_FIELDS = (
    "id",
    "query",
    "positive",
    "negative",
    "instruction",
    "task",
    "task_type",
    "text",
)


class InputSpec(BaseModel):
    """One input: a file, a directory of a saved dataset, or a ``datasets`` hub id.

    ``task`` defaults to the file's stem (``pairs.jsonl.gz`` -> ``pairs``). ``columns`` maps our
    field names to the input's column names. ``format`` is guessed from the suffix when None.
    """

    model_config = ConfigDict(extra="forbid")

    path: str
    task: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    format: Literal["jsonl", "parquet", "csv", "tsv", "hf"] | None = None
    split: str = "train"

    @model_validator(mode="after")
    def _check_columns(self) -> InputSpec:
        unknown = sorted(set(self.columns) - set(MAPPABLE_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown field(s) in column mapping: {unknown}; known: {MAPPABLE_FIELDS}"
            )
        return self
