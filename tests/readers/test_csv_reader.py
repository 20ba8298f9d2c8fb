"""CSV/TSV reader: real rows round-trip with the line each row starts on; bad rows are kept."""

from __future__ import annotations

import csv
import gzip
import io

import pytest


def _render(records: list[list[str]], delimiter: str, lineterminator: str) -> list[str]:
    """Each record as ``csv.writer`` writes it (quoted fields may hold newlines)."""
    out = []
    for record in records:
        buf = io.StringIO()
        csv.writer(buf, delimiter=delimiter, lineterminator=lineterminator).writerow(record)
        out.append(buf.getvalue())
    return out


def _start_lines(chunks: list[str]) -> list[int]:
    """The 1-based line each chunk starts on, counted independently of the reader."""
    starts, line = [], 1
    for chunk in chunks:
        starts.append(line)
        line += chunk.count("\n")
    return starts


def _write(path, text: str) -> None:
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


@pytest.mark.parametrize(
    ("name", "delimiter"),
    [("pairs.csv", ","), ("pairs.csv.gz", ","), ("pairs.tsv", "\t"), ("pairs.tsv.gz", "\t")],
)
@pytest.mark.parametrize("lineterminator", ["\r\n", "\n"])
def test_round_trip(tmp_path, pairs, read_all, name, delimiter, lineterminator):
    # Multi-line, quoted, comma- and tab-holding values: the cases a naive split gets wrong.
    pairs = [*pairs, {**pairs[0], "positive": 'line one\nline "two",\tthree\n\nfour'}]
    header = list(pairs[0])
    chunks = _render([header] + [[p[k] for k in header] for p in pairs], delimiter, lineterminator)
    _write(tmp_path / name, "".join(chunks))
    rows = read_all(tmp_path / name)
    assert [r.payload for r in rows] == pairs
    assert [r.source_row for r in rows] == _start_lines(chunks)[1:]
    assert sum(c.count("\n") for c in chunks) > len(chunks)  # some rows do span lines
    assert {(r.task, r.error) for r in rows} == {("pairs", None)}


def test_bad_rows_yield_errors_with_start_lines(tmp_path, read_all):
    text = (
        "query,positive,negative\n"  # 1
        "q1,p1,\n"  # 2: empty field -> None
        "q2,p2\n"  # 3: too few fields
        '"q3\n'  # 4: a quoted field over two lines
        'still q3",p3,n3\n'  # 5
        "q4,p4,n4,extra\n"  # 6: too many fields
        "\n"  # 7: blank, skipped
        "q5,\xe9t\xe9,n5\n"  # 8: written as latin-1 below: invalid UTF-8
        '"q6",p6,n6\n'  # 9
    )
    path = tmp_path / "bad.csv"
    path.write_bytes(text.encode("utf-8").replace("\xe9".encode(), b"\xe9"))
    rows = read_all(path)
    assert [r.source_row for r in rows] == [2, 3, 4, 6, 8, 9]
    assert rows[0].payload == {"query": "q1", "positive": "p1", "negative": None}
    assert rows[1].error == "malformed_csv: expected 3 fields, got 2"
    assert rows[1].raw == "q2,p2\n"
    assert rows[2].payload == {"query": "q3\nstill q3", "positive": "p3", "negative": "n3"}
    assert rows[3].error == "malformed_csv: expected 3 fields, got 4"
    assert rows[4].error.startswith("invalid_utf8: ") and rows[4].payload is None
    assert rows[4].raw == "q5,\ufffdt\ufffd,n5\n"
    assert rows[5].payload == {"query": "q6", "positive": "p6", "negative": "n6"}


def test_unterminated_quote_is_one_malformed_row(tmp_path, read_all):
    (tmp_path / "u.csv").write_text('a,b\n1,2\n"never closed,3\n4,5\n')
    rows = read_all(tmp_path / "u.csv")
    assert [r.source_row for r in rows] == [2, 3]
    assert rows[1].error.startswith("malformed_csv: ")
    assert rows[1].raw == '"never closed,3\n4,5\n'


def test_long_field_and_bom(tmp_path, read_all):
    long = "x" * 200_000  # over the csv module's default 128 KiB field limit
    (tmp_path / "l.tsv").write_bytes(f"\ufeffquery\tpositive\nq\t{long}\n".encode())
    assert read_all(tmp_path / "l.tsv")[0].payload == {"query": "q", "positive": long}


def test_header_problems_raise(tmp_path, read_all):
    (tmp_path / "dup.csv").write_text("a,b,a\n1,2,3\n")
    with pytest.raises(ValueError, match=r"dup.csv: duplicate column name\(s\).*\['a'\]"):
        read_all(tmp_path / "dup.csv")
    (tmp_path / "empty.csv").write_text("")
    assert read_all(tmp_path / "empty.csv") == []
    with pytest.raises(FileNotFoundError, match="nope.tsv: no such input file"):
        read_all(tmp_path / "nope.tsv")
