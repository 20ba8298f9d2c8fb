"""JSON Schemas of the record types and Arrow schemas of the written ones, committed under
``schemas/``.

    python -m kalm_data.json_schemas schemas/     # regenerate after changing kalm_data/records.py

``<name>.schema.json`` is the model's JSON Schema (keys sorted); ``<name>.arrow.txt`` is
``str(to_arrow_schema(model))``, the exact Arrow schema the Parquet files are written (and the
trainer's shards read) with. Both are deterministic for a given pydantic and pyarrow; a test
fails when a committed file differs from what this module generates (``stale``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from kalm_data.arrow_schema import to_arrow_schema
from kalm_data.curate.config import CurateConfig
from kalm_data.generate.config import GenerateConfig
from kalm_data.generate.records import GeneratedPair
from kalm_data.records import SCHEMA_VERSION, InputPair, RejectedRecord, TrainingExample

#: Models with a JSON Schema.
MODELS: dict[str, type[BaseModel]] = {
    "training_example": TrainingExample,
    "rejected_record": RejectedRecord,
    "input_pair": InputPair,
    "curate_config": CurateConfig,
    "generated_pair": GeneratedPair,
    "generate_config": GenerateConfig,
}

#: Models written to Parquet, with an Arrow schema.
ARROW_MODELS: dict[str, type[BaseModel]] = {
    "training_example": TrainingExample,
    "rejected_record": RejectedRecord,
    "generated_pair": GeneratedPair,
}


def schemas() -> dict[str, str]:
    """File name -> JSON text, for every model of ``MODELS``."""
    out = {}
    for name, model in MODELS.items():
        schema = model.model_json_schema()
        schema["$id"] = f"kalm-data/{name}/{SCHEMA_VERSION}"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def arrow_schemas() -> dict[str, str]:
    """File name -> ``str`` of the Arrow schema (with its metadata), for every ``ARROW_MODELS``."""
    return {
        f"{name}.arrow.txt": str(to_arrow_schema(model)) + "\n"
        for name, model in ARROW_MODELS.items()
    }


def generated() -> dict[str, str]:
    """Every committed schema file: file name -> text (JSON Schemas, then Arrow schemas)."""
    return {**schemas(), **arrow_schemas()}


def stale(folder: str | Path) -> list[str]:
    """The generated files that ``folder`` lacks or holds with other text, sorted; empty when
    the committed schemas are up to date."""
    folder = Path(folder)
    return sorted(
        name
        for name, text in generated().items()
        if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != text
    )


def write(folder: str | Path) -> None:
    """Write every generated file into ``folder`` (created if needed), overwriting."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in generated().items():
        (folder / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else "schemas")
