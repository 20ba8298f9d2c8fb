"""Input readers: every input (JSONL, Parquet, CSV/TSV, ``datasets``) as a stream of ``RawRow``s.

Contract: ``read_rows`` never raises on a bad row and never drops one silently: an unparseable
row is a ``RawRow`` with ``payload=None`` and ``error="<reason>: <detail>"`` (reasons in
``kalm_data.reasons``). Whole-file problems (missing file, unreadable Parquet) raise an
exception naming the file. No column mapping happens here: payloads keep the input's columns.

Row numbers: ``source_row`` is 1-based in every format: the physical line a row starts on for
JSONL and CSV/TSV (the CSV header is line 1, so the first data row is 2), and the row number for
Parquet and ``datasets`` (the first row is 1).

Before a run, ``kalm_data.readers.preflight.check_input`` checks an input (exists, intact, has
the columns the mapping needs) and raises one ``InputError`` line naming the file.

Format: ``spec.format``, else the suffix (``.jsonl``/``.json``, ``.parquet``, ``.csv``, ``.tsv``,
each optionally compressed, e.g. ``.jsonl.gz``); anything else (a ``save_to_disk`` directory, a
hub id) is read with ``datasets``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from kalm_data.inputs import InputSpec
from kalm_data.readers.common import sha256_file
from kalm_data.readers.csv import read_csv
from kalm_data.readers.hf import hf_fingerprint, read_hf
from kalm_data.readers.jsonl import read_jsonl
from kalm_data.readers.parquet import read_parquet
from kalm_data.records import RawRow

__all__ = ["detect_format", "fingerprint", "read_rows", "task_name"]

#: Data suffix -> format. Compression suffixes (inferred by fsspec) may follow any of them.
SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
}
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")


def _split_name(path: str) -> tuple[str, str | None]:
    """``dir/pairs.jsonl.gz`` -> (``pairs``, ``jsonl``); (name, None) when no data suffix."""
    name = posixpath.basename(path.rstrip("/"))
    stem = name
    for suffix in COMPRESSION_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    for suffix, fmt in SUFFIX_FORMATS.items():
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)], fmt
    return name, None


def detect_format(spec: InputSpec) -> str:
    """``spec.format``, else the format its suffix names, else ``hf``."""
    return spec.format or _split_name(spec.path)[1] or "hf"


def task_name(spec: InputSpec) -> str:
    """``spec.task``, else the file's stem without data suffixes (``org/name`` -> ``name``)."""
    return spec.task or _split_name(spec.path)[0]


def read_rows(spec: InputSpec) -> Iterator[RawRow]:
    """Every row of the input ``spec`` as a ``RawRow``, streamed, in file order."""
    task = task_name(spec)
    fmt = detect_format(spec)
    if fmt == "jsonl":
        return read_jsonl(spec.path, task)
    if fmt == "parquet":
        return read_parquet(spec.path, task)
    if fmt in ("csv", "tsv"):
        return read_csv(spec.path, task, delimiter="\t" if fmt == "tsv" else ",")
    return read_hf(spec.path, task, spec.split)


def fingerprint(spec: InputSpec) -> str:
    """sha256 hex identifying the input's content: of the file's bytes, or (``hf``) see
    ``hf_fingerprint``. Same bytes -> same fingerprint."""
    if detect_format(spec) == "hf":
        return hf_fingerprint(spec.path, spec.split)
    return sha256_file(spec.path)
