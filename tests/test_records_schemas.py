from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import BaseModel

from kalm_data.arrow_schema import to_arrow_schema, to_table
from kalm_data.json_schemas import schemas
from kalm_data.records import RejectedRecord, TrainingExample

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def test_training_example_arrow_schema_is_explicit():
    schema = to_arrow_schema(TrainingExample)
    assert schema.field("positives").type == pa.list_(pa.string())
    assert schema.field("negative_scores").type == pa.list_(pa.float32())
    assert schema.field("negative_ranks").type == pa.list_(pa.int64())
    assert schema.field("positive_rank").type == pa.int64()
    assert schema.field("query_rank").nullable and not schema.field("query").nullable
    assert schema.field("instruction").type == pa.string()
    assert schema.names == list(TrainingExample.model_fields)


def test_rejected_schema():
    assert to_arrow_schema(RejectedRecord) == pa.schema(
        [
            pa.field("schema_version", pa.string(), nullable=False),
            pa.field("id", pa.string()),
            pa.field("task", pa.string(), nullable=False),
            pa.field("stage", pa.string(), nullable=False),
            pa.field("reason", pa.string(), nullable=False),
            pa.field("detail", pa.string(), nullable=False),
            pa.field("source_file", pa.string(), nullable=False),
            pa.field("source_row", pa.int64(), nullable=False),
            pa.field("rows", pa.int64(), nullable=False),
            pa.field("record", pa.string(), nullable=False),
        ],
        metadata={"kalm_data.record": "RejectedRecord"},
    )


def test_unsupported_field_type_is_an_error():
    class Bad(BaseModel):
        x: dict[str, int]

    with pytest.raises(TypeError, match="no Arrow type"):
        to_arrow_schema(Bad)


def test_table_rejects_rows_of_the_wrong_shape():
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, TypeError)):
        to_table(RejectedRecord, [{"task": "t", "source_row": "not an int"}])


def test_committed_json_schemas_are_fresh():
    for name, text in schemas().items():
        path = SCHEMAS / name
        assert path.exists(), f"{path} missing: run python -m kalm_data.json_schemas schemas"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run python -m kalm_data.json_schemas schemas"
        )
