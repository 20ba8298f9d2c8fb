"""Format detection, task names, file fingerprints and the spec overrides of ``read_rows``."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from kalm_data.inputs import InputSpec
from kalm_data.readers import detect_format, fingerprint, task_name


@pytest.mark.parametrize(
    ("path", "fmt", "task"),
    [
        ("pairs.jsonl.gz", "jsonl", "pairs"),
        ("data/pairs.jsonl", "jsonl", "pairs"),
        ("gs://bucket/dir/train.json.gz", "jsonl", "train"),
        ("x/my.data.v2.parquet", "parquet", "my.data.v2"),
        ("QA.CSV.GZ", "csv", "QA"),
        ("dir/qa.tsv", "tsv", "qa"),
        ("dir/qa.tsv.gz", "tsv", "qa"),
        ("saved/dataset_dir/", "hf", "dataset_dir"),
        ("org/name", "hf", "name"),
        ("squad", "hf", "squad"),
        ("notes.txt", "hf", "notes.txt"),
    ],
)
def test_format_and_task_from_the_path(path, fmt, task):
    assert detect_format(InputSpec(path=path)) == fmt
    assert task_name(InputSpec(path=path)) == task


def test_spec_overrides_format_and_task(tmp_path, read_all):
    (tmp_path / "rows.txt").write_text('{"query": "q"}\n')
    rows = read_all(tmp_path / "rows.txt", format="jsonl", task="faq")
    assert [(r.task, r.source_row, r.payload) for r in rows] == [("faq", 1, {"query": "q"})]
    (tmp_path / "rows.dat").write_text("query\tpositive\nq\tp\n")
    rows = read_all(tmp_path / "rows.dat", format="tsv")
    assert rows[0].payload == {"query": "q", "positive": "p"} and rows[0].task == "rows.dat"


def test_fingerprint_is_the_sha256_of_the_stored_bytes(tmp_path):
    data = gzip.compress(b'{"query": "q", "positive": "p"}\n' * 100)
    a, b, c = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz", tmp_path / "c.jsonl.gz"
    a.write_bytes(data)
    b.write_bytes(data)
    c.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one byte changed
    fa = fingerprint(InputSpec(path=str(a)))
    assert fa == fingerprint(InputSpec(path=str(b)))  # same bytes, other name
    assert fa != fingerprint(InputSpec(path=str(c)))
    assert fa == hashlib.sha256(data).hexdigest()  # of the file, not of the decompressed text
    with pytest.raises(FileNotFoundError, match="missing.csv: no such input file"):
        fingerprint(InputSpec(path=str(tmp_path / "missing.csv")))
