"""Helpers shared by the readers: opening an input, building error rows, cleaning values.

Contract: ``open_input`` raises ``FileNotFoundError("<path>: no such input file")`` for a missing
file and re-raises any other I/O or decompression failure as ``OSError("<path>: ...")``, so a
whole-file problem always names the file. Row-level problems never raise: readers turn them
into ``error_row``s.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import fsspec

from kalm_data.records import RawRow

#: ``RawRow.raw`` keeps at most this many characters of an unparseable row.
MAX_RAW_CHARS = 10_000


def require_exists(path: str) -> None:
    """Raise ``FileNotFoundError`` naming ``path`` when nothing exists there (any fsspec URL)."""
    fs, fs_path = fsspec.core.url_to_fs(path)
    if not fs.exists(fs_path):
        raise FileNotFoundError(f"{path}: no such input file")


@contextmanager
def open_input(path: str, compression: str | None = "infer") -> Iterator[IO[bytes]]:
    """Open ``path`` for binary reading through fsspec (gzip etc. inferred from the suffix)."""
    require_exists(path)
    try:
        with fsspec.open(path, "rb", compression=compression) as f:
            yield f
    except (OSError, EOFError, zlib.error) as e:
        # A truncated .gz or an unreadable object is a whole-file problem: say which file.
        raise OSError(f"{path}: cannot read input: {e}") from e


def error_row(path: str, task: str, row: int, reason: str, detail: str, raw: bytes | str) -> RawRow:
    """A ``RawRow`` for an unparseable row: ``error="<reason>: <detail>"``, ``raw`` capped."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    return RawRow(
        source_file=path,
        source_row=row,
        task=task,
        error=f"{reason}: {detail}",
        raw=raw[:MAX_RAW_CHARS],
    )


def clean_values(row: dict[str, Any]) -> dict[str, Any]:
    """Top-level float NaN -> None (pandas and Arrow use NaN for missing values)."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def sha256_file(path: str, digest: hashlib._Hash | None = None) -> str:
    """sha256 hex of the bytes stored at ``path`` (not decompressed), read in 1 MiB chunks.

    Pass ``digest`` to hash several files into one.
    """
    if digest is None:
        digest = hashlib.sha256()
    with open_input(path, compression=None) as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
