"""JSONL reader: real rows round-trip; every bad line yields exactly one error row."""

from __future__ import annotations

import gzip
import json
import random
from itertools import islice

import pytest

from kalm_data.inputs import InputSpec
from kalm_data.readers import read_rows
from kalm_data.readers.common import MAX_RAW_CHARS

from realdata import PAIRS

GOOD = {"query": "q", "positive": "p"}

# (line bytes, expected error prefix or None for a good row); blank lines are not rows.
MIXED = [
    (b"\xff\xfe not utf-8 \xc3\x28", "invalid_utf8: "),
    (json.dumps(GOOD).encode(), None),
    (b'{"query": "truncated', "malformed_json: "),
    (json.dumps(GOOD).encode(), None),
    (b"", "blank"),
    (b'["a", "list"]', "not_an_object: got a JSON array"),
    (json.dumps(GOOD).encode(), None),
    (b"   \t ", "blank"),
    (b'"a bare string"', "not_an_object: got a JSON string"),
    (json.dumps(GOOD).encode(), None),
    (b"null", "not_an_object: got a JSON null"),
    (b"42", "not_an_object: got a JSON number"),
    (json.dumps(GOOD).encode(), None),
    (b"{'single': 'quotes'}", "malformed_json: "),
    (json.dumps({"query": "caf\u00e9 \u2028 sep", "tags": [1, [2]]}).encode(), None),
]


def _write(path, lines: list[bytes], newline: bytes = b"\n") -> None:
    data = newline.join(lines) + newline
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def test_real_file_reads_every_row_with_its_line_number(pairs):
    rows = list(islice(read_rows(InputSpec(path=str(PAIRS))), len(pairs)))
    assert [r.payload for r in rows] == pairs
    assert [r.source_row for r in rows] == list(range(1, len(pairs) + 1))
    assert {(r.source_file, r.task, r.error, r.raw) for r in rows} == {
        (str(PAIRS), "pairs", None, None)
    }


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.json", "pairs.jsonl.gz"])
def test_round_trip(tmp_path, pairs, name, read_all):
    path = tmp_path / name
    _write(path, [json.dumps(p).encode() for p in pairs])
    rows = read_all(path)
    assert [r.payload for r in rows] == pairs
    assert [r.source_row for r in rows] == list(range(1, len(pairs) + 1))


@pytest.mark.parametrize("name", ["mixed.jsonl", "mixed.jsonl.gz"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_mixed_bad_lines(tmp_path, name, newline, read_all):
    path = tmp_path / name
    _write(path, [line for line, _ in MIXED], newline)
    rows = read_all(path)
    expected = [(i, want) for i, (_, want) in enumerate(MIXED, start=1) if want != "blank"]
    assert [r.source_row for r in rows] == [i for i, _ in expected]
    for row, (_, want) in zip(rows, expected, strict=True):
        assert row.task == "mixed" and row.source_file == str(path)
        if want is None:
            assert row.error is None and row.raw is None and row.payload is not None
        else:
            assert row.payload is None and row.error.startswith(want), row.error
            assert row.raw  # the original text, for the rejected output
    assert rows[-1].payload == {"query": "caf\u00e9 \u2028 sep", "tags": [1, [2]]}
    assert rows[0].raw == b"\xff\xfe not utf-8 \xc3\x28".decode("utf-8", errors="replace")
    assert "Unterminated string" in rows[2].error  # the decoder's own message


def test_hostile_lines_never_raise(tmp_path, read_all):
    deep = b"[" * 100_000
    huge_int = b'{"n": ' + b"9" * 5000 + b"}"
    long_bad = b'{"query": "' + b"x" * 50_000
    _write(tmp_path / "h.jsonl", [deep, huge_int, long_bad, b"\xef\xbb\xbf" + b'{"a": NaN}'])
    rows = read_all(tmp_path / "h.jsonl")
    assert [r.error.split(":")[0] for r in rows[:3]] == ["malformed_json"] * 3
    assert len(rows[2].raw) == MAX_RAW_CHARS
    assert rows[3].error.startswith("malformed_json")  # a BOM is only stripped on line 1


def test_bom_on_first_line_and_nan_become_clean(tmp_path, read_all):
    (tmp_path / "b.jsonl").write_bytes(b'\xef\xbb\xbf{"a": NaN, "b": [1.5]}\n')
    assert read_all(tmp_path / "b.jsonl")[0].payload == {"a": None, "b": [1.5]}


def test_random_bytes_one_row_per_non_blank_line(tmp_path, read_all):
    rng = random.Random(0)
    alphabet = b'{}[]":,\\ \t\rab\x00\xc3\xa9\xff' + json.dumps(GOOD).encode()
    lines = [bytes(rng.choice(alphabet) for _ in range(rng.randrange(8))) for _ in range(300)]
    _write(tmp_path / "r.jsonl", lines)
    rows = read_all(tmp_path / "r.jsonl")
    non_blank = [i for i, line in enumerate(lines, start=1) if line.strip()]
    assert [r.source_row for r in rows] == non_blank
    assert all((r.payload is None) == (r.error is not None) for r in rows)


def test_whole_file_problems_name_the_file(tmp_path, read_all):
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(FileNotFoundError, match="missing.jsonl: no such input file"):
        read_all(missing)
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(b'{"a": 1}\n' * 1000)[:-20])
    with pytest.raises(OSError, match="cut.jsonl.gz"):
        read_all(truncated)
