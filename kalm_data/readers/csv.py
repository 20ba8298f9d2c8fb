"""CSV and TSV reader: the first row is the header; one ``RawRow`` per later row, streamed.

Contract: ``source_row`` is the 1-based physical line where the row starts (the header is line
1; a quoted field may span lines). Values are strings; an empty field becomes None. Blank lines
are skipped. A row with more or fewer fields than the header, or one ``csv`` cannot parse,
yields ``malformed_csv``; a row with bytes that are not UTF-8 yields ``invalid_utf8``. TSV is
the same dialect with a tab delimiter (quotes allowed, as pandas and ``csv.writer`` write it).
An empty file yields nothing; an undecodable header or duplicate column names raise ``ValueError``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from typing import IO

from kalm_data.readers.common import error_row, open_input
from kalm_data.reasons import INVALID_UTF8, MALFORMED_CSV
from kalm_data.records import RawRow

logger = logging.getLogger(__name__)

# Long passages are legitimate here (validation rejects over-long text with its own reason);
# the csv module's default 128 KiB field limit would turn them into malformed_csv.
_FIELD_LIMIT = 2**31 - 1


class Lines:
    """Feeds ``csv.reader`` one decoded line at a time and remembers the lines of the current
    row (``csv.reader`` never reads ahead), so each row knows its text and first line."""

    def __init__(self, f: IO[bytes]):
        self._f = f
        self.line_no = 0  # lines consumed so far
        self.row_lines: list[bytes] = []
        self.decode_error: str | None = None

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        line = next(self._f)
        self.line_no += 1
        self.row_lines.append(line)
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as e:
            self.decode_error = self.decode_error or str(e)
            return line.decode("utf-8", errors="replace")

    def start_row(self) -> int:
        """Forget the previous row; return the line number the next row starts on."""
        self.row_lines, self.decode_error = [], None
        return self.line_no + 1


def make_reader(lines: Lines, delimiter: str) -> Iterator[list[str]]:
    """A ``csv.reader`` over ``lines`` that accepts fields of any length."""
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    return csv.reader(lines, delimiter=delimiter)


def read_csv(path: str, task: str, delimiter: str = ",") -> Iterator[RawRow]:
    """Yield every data row of the CSV (``delimiter=","``) or TSV (``"\\t"``) file at ``path``."""
    with open_input(path) as f:
        lines = Lines(f)
        reader = make_reader(lines, delimiter)
        header = read_header(path, reader, lines)
        if header is None:
            logger.warning("%s: empty file, no header and no rows", path)
            return
        while True:
            start = lines.start_row()
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield error_row(path, task, start, MALFORMED_CSV, str(e), b"".join(lines.row_lines))
                continue
            if fields:  # [] is a blank line
                yield _to_row(path, task, start, header, fields, lines)


def read_header(path: str, reader: Iterator[list[str]], lines: Lines) -> list[str] | None:
    """The column names (None for an empty file); raise ``ValueError`` if they are unusable."""
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise ValueError(f"{path}: unreadable header row: {e}") from e
    if header == []:
        raise ValueError(f"{path}: line 1 is blank, expected the header row")
    if header is None:
        return None
    if lines.decode_error:
        raise ValueError(f"{path}: header row is not valid UTF-8: {lines.decode_error}")
    header[0] = header[0].removeprefix("\ufeff")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate column name(s) in the header: {duplicates}")
    return header


def _to_row(
    path: str, task: str, start: int, header: list[str], fields: list[str], lines: Lines
) -> RawRow:
    raw = b"".join(lines.row_lines)
    if lines.decode_error:
        return error_row(path, task, start, INVALID_UTF8, lines.decode_error, raw)
    if len(fields) != len(header):
        detail = f"expected {len(header)} fields, got {len(fields)}"
        return error_row(path, task, start, MALFORMED_CSV, detail, raw)
    payload = {name: value or None for name, value in zip(header, fields, strict=True)}
    return RawRow(source_file=path, source_row=start, task=task, payload=payload)
