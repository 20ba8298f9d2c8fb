from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import BaseModel

from kalm_data.arrow_schema import conform, read_problems, select_fields, to_arrow_schema, to_table
from kalm_data.json_schemas import arrow_schemas, generated, schemas, stale, write
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


def test_committed_schemas_are_fresh():
    """Every JSON Schema and Arrow schema under schemas/ is what kalm_data.json_schemas makes."""
    assert set(generated()) == set(schemas()) | set(arrow_schemas())
    assert {"training_example.arrow.txt", "rejected_record.arrow.txt"} <= set(arrow_schemas())
    assert stale(SCHEMAS) == [], "stale schemas: run python -m kalm_data.json_schemas schemas"


def test_arrow_schema_files_are_the_written_schemas():
    text = (SCHEMAS / "training_example.arrow.txt").read_text(encoding="utf-8")
    assert text == str(to_arrow_schema(TrainingExample)) + "\n"
    assert "positive_scores: list<item: float> not null" in text.splitlines()
    assert text.endswith("kalm_data.record: 'TrainingExample'\n")


@pytest.mark.parametrize("name", ["training_example.arrow.txt", "curate_config.schema.json"])
def test_a_changed_or_missing_schema_file_is_stale(tmp_path, name):
    write(tmp_path)
    assert stale(tmp_path) == []
    path = tmp_path / name
    changed = path.read_text(encoding="utf-8").replace("string", "large_string", 1)
    path.write_text(changed, encoding="utf-8")
    assert stale(tmp_path) == [name]
    path.unlink()
    assert stale(tmp_path) == [name]


def test_select_fields_keeps_the_order_and_rejects_unknown_names():
    schema = to_arrow_schema(TrainingExample)
    picked = select_fields(schema, ["query", "id"])
    assert picked.names == ["query", "id"] and picked.metadata == schema.metadata
    with pytest.raises(KeyError, match="'querry'"):
        select_fields(schema, ["query", "querry"])


def test_read_problems_name_each_missing_or_mistyped_column():
    expected = pa.schema([("a", pa.string()), ("b", pa.list_(pa.float32())), ("c", pa.int64())])
    assert read_problems(expected, expected) == []
    related = pa.schema(
        [("a", pa.large_string()), ("b", pa.large_list(pa.float64())), ("c", pa.null())]
    )
    assert read_problems(related, expected) == []
    found = pa.schema([("b", pa.list_(pa.string())), ("c", pa.float64()), ("x", pa.string())])
    assert read_problems(found, expected) == [
        "no column 'a'",
        "column 'b' is list<item: string>, expected list<item: float>",
        "column 'c' is double, expected int64",
    ]
    twice = pa.schema([("a", pa.string()), ("a", pa.string()), ("b", pa.list_(pa.null()))])
    assert read_problems(twice, expected) == ["column 'a' appears 2 times", "no column 'c'"]


def test_conform_casts_to_the_expected_types_and_names_a_value_that_does_not_fit():
    expected = pa.schema([("b", pa.list_(pa.float32())), ("c", pa.int64())])
    table = pa.table(
        {"c": pa.array([1], pa.uint8()), "b": pa.array([[0.5]], pa.large_list(pa.float64()))}
    )
    out = conform(table, expected)
    assert out.schema.types == expected.types and out.to_pylist() == [{"b": [0.5], "c": 1}]
    big = pa.table({"b": [[0.5]], "c": pa.array([2**63], pa.uint64())})
    with pytest.raises(ValueError, match="^column 'c' \\(uint64\\) does not fit int64: "):
        conform(big, expected)
