"""The trainer reads shards through the writer's Arrow schema: round trip, and clear errors."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from train_helpers import shard_rows

from kalm_data.arrow_schema import to_arrow_schema, to_table
from kalm_data.cli import main
from kalm_data.errors import UsageError
from kalm_data.records import TrainingExample
from kalm_data.train import loop
from kalm_data.train.data import (
    READ_FIELDS,
    READ_SCHEMA,
    ShardSchemaError,
    load_rows,
    read_columns,
)
from kalm_data.writers.parquet import write_parts


@pytest.fixture()
def examples(real_pairs) -> list[dict]:
    """Five TrainingExample dicts of one task, one with an instruction."""
    rows = shard_rows(real_pairs["disfl-qa/dev"][:5])
    rows[0]["instruction"] = "Given a question, retrieve its answer"
    return rows


def write_foreign(root, table: pa.Table) -> str:
    """``table`` as ``root/data/t/part-00000-of-00001.parquet`` (another tool's shard); returns
    the regex of the file's URL as error messages name it."""
    folder = root / "data" / "t"
    folder.mkdir(parents=True)
    path = folder / "part-00000-of-00001.parquet"
    pq.write_table(table, path)
    return "(file://)?" + re.escape(str(path))


def test_read_schema_is_the_written_schema_of_the_read_fields():
    written = to_arrow_schema(TrainingExample)
    assert READ_SCHEMA.names == list(READ_FIELDS)
    assert all(READ_SCHEMA.field(f.name) == written.field(f.name) for f in READ_SCHEMA)


def test_trainer_reads_what_the_writer_writes(tmp_path, examples):
    paths = write_parts(TrainingExample, examples, str(tmp_path / "data" / "t"), rows_per_part=2)
    assert len(paths) == 3
    assert all(read_columns(p).schema.types == READ_SCHEMA.types for p in paths)
    by_id = {r.id: r for r in load_rows([str(tmp_path)])}
    assert sorted(by_id) == sorted(e["id"] for e in examples)
    for e in examples:
        row = by_id[e["id"]]
        assert (row.task, row.task_type, row.instruction, row.query, row.positives) == (
            e["task"],
            e["task_type"],
            e["instruction"],
            e["query"],
            e["positives"],
        )
        assert row.negatives == e["negatives"]
        assert row.positive_scores == pytest.approx(e["positive_scores"], rel=1e-6)
        assert row.negative_scores == pytest.approx(e["negative_scores"], rel=1e-6)


def test_a_shard_without_a_column_is_a_clear_error(tmp_path, examples):
    path = write_foreign(tmp_path, to_table(TrainingExample, examples).drop_columns(["negatives"]))
    with pytest.raises(ShardSchemaError) as raised:
        load_rows([str(tmp_path)])
    message = str(raised.value)
    assert re.match(
        f"{path} is not a training shard the trainer can read: no column 'negatives' ", message
    )
    assert "\n" not in message
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, UsageError)


def test_a_shard_with_wrong_types_names_every_such_column(tmp_path, examples):
    table = to_table(TrainingExample, examples)
    table = table.set_column(
        table.schema.get_field_index("positives"),
        "positives",
        pa.array([e["positives"][0] for e in examples]),  # one text, not a list
    )
    table = table.set_column(
        table.schema.get_field_index("negative_scores"),
        "negative_scores",
        pa.array([[str(s) for s in e["negative_scores"]] for e in examples]),
    )
    path = write_foreign(tmp_path, table)
    expected = re.escape(
        " is not a training shard the trainer can read: "
        "column 'positives' is string, expected list<item: string>; "
        "column 'negative_scores' is list<element: string>, expected list<item: float> ("
    )
    with pytest.raises(ShardSchemaError, match=f"^{path}{expected}"):
        load_rows([str(tmp_path)])


def test_a_foreign_shard_of_the_same_type_families_reads_like_the_writers(tmp_path, examples):
    """Inferred types (float64 scores, an all-null column), large strings and extra columns."""
    for e in examples:
        e["instruction"] = None
    table = pa.Table.from_pylist([{k: e[k] for k in READ_FIELDS} | {"extra": 1} for e in examples])
    assert pa.types.is_null(table.schema.field("instruction").type)
    table = table.set_column(0, "id", table.column("id").cast(pa.large_string()))
    write_foreign(tmp_path / "foreign", table)
    write_parts(TrainingExample, examples, str(tmp_path / "ours" / "data" / "t"), 100)
    assert load_rows([str(tmp_path / "foreign")]) == load_rows([str(tmp_path / "ours")])


def test_train_on_a_shard_without_a_column_is_one_line_before_any_model(
    tiny_qwen, tmp_path, monkeypatch, capsys, examples
):
    path = write_foreign(tmp_path, to_table(TrainingExample, examples).drop_columns(["query"]))
    started = []
    monkeypatch.setattr(loop, "setup", lambda *a: started.append("runtime"))
    monkeypatch.setattr(loop, "build_model", lambda *a: started.append("model"))
    output = tmp_path / "out"
    argv = ["train", "--data", str(tmp_path), "--model", tiny_qwen, "--output", str(output)]
    assert main([*argv, "--threads", "1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and re.match(f"kalm-data train: error: {path} .*'query'", lines[0])
    assert started == [] and not output.exists()
