"""Preflight: every user mistake is one ``InputError`` naming the file (and the column); good
inputs of every format give their columns and the same fingerprint as ``fingerprint``."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma

import datasets
import huggingface_hub
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kalm_data.inputs import InputSpec
from kalm_data.readers import fingerprint
from kalm_data.readers.preflight import InputError, InputInfo, check_corpus, check_input

from realdata import PAIRS

COLUMNS = ("id", "source", "query", "positive", "qtype", "focus")


@pytest.fixture()
def rows(pairs) -> list[dict]:
    """The first 20 real rows of qa_pairs_en."""
    return pairs[:20]


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _table(rows: list[dict], delimiter: str, columns=None) -> bytes:
    """``rows`` as CSV/TSV with a header, written by ``csv.writer`` (values may hold newlines)."""
    columns = columns or list(rows[0])
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerows([columns] + [[r[c] for c in columns] for r in rows])
    return buf.getvalue().encode()


def _write(path, data: bytes):
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def _check(path, **spec) -> InputInfo:
    return check_input(InputSpec(path=str(path), **spec))


def _fails(path, *parts: str, **spec) -> str:
    """Assert ``check_input`` raises one line starting with the path and holding ``parts``."""
    with pytest.raises(InputError) as info:
        _check(path, **spec)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    for part in parts:
        assert part in message, message
    return message


# --- good inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["qa.jsonl", "qa.json", "qa.jsonl.gz", "qa.csv", "qa.csv.gz", "qa.tsv", "qa.tsv.gz"]
)
def test_good_text_inputs(tmp_path, rows, name):
    delimiter = "\t" if ".tsv" in name else ","
    data = _jsonl(rows) if ".json" in name else _table(rows, delimiter)
    path = _write(tmp_path / name, data)
    info = _check(path)
    assert info.columns == COLUMNS
    assert info.fields == {"query": "query", "positive": "positive"}
    assert info.fingerprint == fingerprint(InputSpec(path=str(path)))
    assert (info.path, info.task) == (str(path), "qa")


def test_good_parquet_and_datasets_dir(tmp_path, rows):
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "qa.parquet")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    for path, fmt in [(tmp_path / "qa.parquet", "parquet"), (tmp_path / "saved", "hf")]:
        info = _check(path)
        assert (info.format, info.columns) == (fmt, COLUMNS)
        assert info.fingerprint == fingerprint(InputSpec(path=str(path)))


def test_the_real_files(tmp_path):
    info = _check(PAIRS)
    assert info.columns == COLUMNS and info.fingerprint == fingerprint(InputSpec(path=str(PAIRS)))
    mrpc = PAIRS.parents[1] / "mrpc" / "msr-para-train.tsv"
    info = _check(mrpc, columns={"query": "#1 String", "positive": "#2 String", "id": "#1 ID"})
    assert info.fields == {"query": "#1 String", "positive": "#2 String", "id": "#1 ID"}
    assert info.columns[0] == "Quality"  # the BOM is not part of the name


def test_mapping_and_defaults(tmp_path, rows):
    renamed = [{"question": r["query"], "pos": r["positive"], "src": r["source"]} for r in rows]
    path = _write(tmp_path / "qa.jsonl", _jsonl(renamed))
    assert _check(path).fields == {"query": "question", "positive": "pos"}
    info = _check(path, columns={"positive": "pos", "task": "src"})
    assert info.fields == {"query": "question", "positive": "pos", "task": "src"}


def test_jsonl_columns_are_the_union_of_the_first_rows(tmp_path, rows):
    lines = [
        {"query": r["query"]} if i % 2 else {"positive": r["positive"]} for i, r in enumerate(rows)
    ]
    path = _write(tmp_path / "split.jsonl", b"\n\n" + _jsonl(lines) + b"not json\n")
    assert _check(path).columns == ("positive", "query")


# --- missing inputs ----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    _fails(tmp_path / "nope.jsonl", "no such input file")
    _fails(tmp_path / "nope", "no such input file")  # no suffix: not a hub id, no network
    _fails("memory://nowhere/qa.tsv", "no such input file")


def test_directory_that_is_not_a_dataset(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.bin").write_bytes(b"\x00\x01")
    _fails(tmp_path / "folder", "datasets cannot load it")
    (tmp_path / "qa.jsonl").mkdir()
    _fails(tmp_path / "qa.jsonl", "is a directory")


def test_uncached_hub_id_offline_is_one_line(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    _fails("kalm-test-org/no-such-dataset", "no such input file", "hub id")


# --- integrity ---------------------------------------------------------------------------------


def test_real_gz_cut_in_half(tmp_path):
    data = PAIRS.read_bytes()
    path = _write(tmp_path / "half.jsonl.gz", b"")
    path.write_bytes(data[: len(data) // 2])
    _fails(path, "truncated or corrupt gzip file: ", "end-of-stream")


def test_small_gz_cut_in_half_fails_while_reading_the_head(tmp_path, rows):
    data = gzip.compress(_jsonl(rows))
    path = tmp_path / "half.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    _fails(path, "truncated or corrupt gzip file: ")


def test_corrupt_gzip_bytes(tmp_path, rows):
    data = bytearray(gzip.compress(_jsonl(rows) * 50))
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "flipped.jsonl.gz").write_bytes(bytes(data))
    _fails(tmp_path / "flipped.jsonl.gz", "truncated or corrupt gzip file: ")
    (tmp_path / "plain.tsv.gz").write_bytes(_table(rows, "\t"))  # never compressed
    _fails(tmp_path / "plain.tsv.gz", "truncated or corrupt gzip file: ")


@pytest.mark.parametrize(("suffix", "compress"), [(".bz2", bz2.compress), (".xz", lzma.compress)])
def test_truncated_bz2_and_xz(tmp_path, rows, suffix, compress):
    data = compress(_jsonl(rows * 20))
    good, cut = tmp_path / f"good.jsonl{suffix}", tmp_path / f"cut.jsonl{suffix}"
    good.write_bytes(data)
    cut.write_bytes(data[:-10])
    assert _check(good).fingerprint == fingerprint(InputSpec(path=str(good)))
    _fails(cut, f"truncated or corrupt {suffix[1:]} file: ")


def test_mapping_mistakes_fail_before_the_full_scan(tmp_path):
    # A valid head and a cut tail: the column check comes first and reads the head only.
    data = PAIRS.read_bytes()
    path = tmp_path / "half.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    _fails(path, "column 'nosuchcol'", columns={"query": "nosuchcol"})


# --- empty inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("empty.jsonl", b""),
        ("blank.jsonl", b"\n  \n\t\n"),
        ("empty.jsonl.gz", b""),
        ("header_only.tsv", b"query\tpositive\n"),
        ("blank.tsv", b"\n\n"),
        ("empty.csv", b""),
    ],
)
def test_empty_inputs(tmp_path, name, data):
    _fails(_write(tmp_path / name, data), "empty input: no rows")


def test_empty_parquet_and_dataset(tmp_path, monkeypatch):
    schema = pa.schema([("query", pa.string()), ("positive", pa.string())])
    pq.write_table(schema.empty_table(), tmp_path / "none.parquet")
    _fails(tmp_path / "none.parquet", "empty input: no rows")
    # datasets itself cannot load an empty save_to_disk folder: still one line naming it.
    datasets.Dataset.from_dict({"query": [], "positive": []}).save_to_disk(str(tmp_path / "ds"))
    _fails(tmp_path / "ds", "datasets cannot load it: ")
    empty = datasets.Dataset.from_dict({"query": [], "positive": []}, features=_features(schema))
    monkeypatch.setattr(datasets, "load_dataset", lambda path, split: empty)
    _fails("some-org/empty-qa", "empty input: no rows")


def _features(schema: pa.Schema) -> datasets.Features:
    return datasets.Features.from_arrow_schema(schema)


def test_unreadable_files(tmp_path, rows):
    (tmp_path / "junk.parquet").write_bytes(b"not parquet" * 20)
    _fails(tmp_path / "junk.parquet", "not a readable Parquet file")
    pretty = json.dumps(rows[:2], indent=2).encode()  # a JSON array, not JSON Lines
    _fails(_write(tmp_path / "array.json", pretty), "no JSON object", "line 1: malformed_json")
    _fails(_write(tmp_path / "dup.csv", b"query,query\na,b\n"), "duplicate column name")


# --- columns -----------------------------------------------------------------------------------


def test_tsv_without_a_positive_column(tmp_path, rows):
    path = _write(tmp_path / "qa.tsv", _table(rows, "\t", ["id", "query", "focus"]))
    message = _fails(
        path,
        "no 'positive' column (looked for positive/positives/pos)",
        "columns are ['id', 'query', 'focus']",
        "map one with --map positive=COLUMN",
    )
    assert "did you mean" not in message


def test_did_you_mean(tmp_path, rows):
    path = _write(tmp_path / "qa.tsv", _table(rows, "\t", ["query", "focus"]))
    path.write_bytes(path.read_bytes().replace(b"focus", b"Positive", 1))
    _fails(path, "no 'positive' column", "did you mean --map positive=Positive?")
    _fails(path, "column 'querry'", "did you mean --map query=query?", columns={"query": "querry"})


def test_map_to_a_missing_column(tmp_path, rows):
    path = _write(tmp_path / "qa.jsonl.gz", _jsonl(rows))
    _fails(
        path,
        "column 'nosuchcol' (mapped by --map query=nosuchcol) not found",
        f"columns are: {list(COLUMNS)}",
        columns={"query": "nosuchcol"},
    )
    _fails(path, "(mapped by --map task=nosuchcol)", columns={"task": "nosuchcol"})
    _fails(path, "(mapped by --map id=ident)", columns={"id": "ident"})


def test_jsonl_column_missing_from_the_sampled_rows(tmp_path, rows):
    path = _write(tmp_path / "qa.jsonl", _jsonl([{"query": r["query"]} for r in rows]))
    _fails(path, "no 'positive' column", "columns are ['query']")


def test_parquet_and_dataset_columns_are_checked(tmp_path, rows):
    table = pa.Table.from_pylist([{"query": r["query"], "answer": r["positive"]} for r in rows])
    pq.write_table(table, tmp_path / "qa.parquet")
    _fails(tmp_path / "qa.parquet", "no 'positive' column", "['query', 'answer']")
    assert _check(tmp_path / "qa.parquet", columns={"positive": "answer"}).fields["positive"]
    datasets.Dataset(table).save_to_disk(str(tmp_path / "ds"))
    _fails(
        tmp_path / "ds", "column 'ans' (mapped by --map positive=ans)", columns={"positive": "ans"}
    )


def test_corpus_needs_a_text_column(tmp_path, rows):
    path = _write(tmp_path / "corpus.jsonl", _jsonl([{"body": r["positive"]} for r in rows]))
    with pytest.raises(InputError) as info:
        check_corpus(InputSpec(path=str(path)))
    assert str(info.value) == (
        f"{path}: no 'text' column (looked for text); columns are ['body']; "
        "map one with corpus columns text=COLUMN"
    )
    info = check_corpus(InputSpec(path=str(path), columns={"text": "body"}))
    assert info.fields == {"text": "body"} and info.columns == ("body",)
    good = _write(tmp_path / "good.jsonl", _jsonl([{"text": r["positive"]} for r in rows]))
    assert check_corpus(InputSpec(path=str(good))).fields == {"text": "text"}
    with pytest.raises(InputError, match=r"corpus.jsonl: column 'txt' \(mapped by corpus columns"):
        check_corpus(InputSpec(path=str(path), columns={"text": "txt"}))
