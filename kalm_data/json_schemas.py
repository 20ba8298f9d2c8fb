"""JSON Schemas of the record types, committed under ``schemas/``.

    python -m kalm_data.json_schemas schemas/     # regenerate after changing kalm_data/records.py

A test fails when the committed files differ from what this module generates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kalm_data.config import CurateConfig
from kalm_data.records import SCHEMA_VERSION, InputPair, RejectedRecord, TrainingExample

MODELS = {
    "training_example": TrainingExample,
    "rejected_record": RejectedRecord,
    "input_pair": InputPair,
    "curate_config": CurateConfig,
}


def schemas() -> dict[str, str]:
    """File name -> JSON text, for every exported model."""
    out = {}
    for name, model in MODELS.items():
        schema = model.model_json_schema()
        schema["$id"] = f"kalm-data/{name}/{SCHEMA_VERSION}"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def write(folder: str | Path) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in schemas().items():
        (folder / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else "schemas")
