"""Preflight: check an input before the pipeline starts, so a user mistake is one clear line.

Contract: ``check_input(spec, required, role)`` returns an ``InputInfo`` or raises ``InputError``,
a one-line message that starts with ``spec.path``. It checks, failing at the first problem:

1. The input exists: a file (local path or fsspec URL) for the file formats; for ``hf``, a
   ``save_to_disk`` directory or anything ``datasets.load_dataset`` reads. A path that is not on
   disk and not a URL is tried as a hub id only when it looks like ``name`` or ``org/name``
   (with ``HF_HUB_OFFLINE=1``, an id missing from the local cache fails here); any other
   missing path is ``"<path>: no such input file"`` without touching the network.
2. It has a data row and the columns the run needs. Only the head is read: the CSV/TSV header,
   the Parquet schema, the ``datasets`` features, or the keys of the first 1,000 JSON objects
   (``kalm_data.readers.columns``). Each ``required`` field is found through ``spec.columns``
   when mapped, else under its default names (``kalm_data.validate.DEFAULT_COLUMNS``; a field
   without defaults, such as a corpus's ``text``, under its own name). Every other mapped field
   must name an existing column too. Messages list the columns and suggest a close match.
3. It is intact: one pass over the stored bytes computes the fingerprint (the value
   ``kalm_data.readers.fingerprint`` returns) and, for gzip/bz2/xz files, decompresses them
   all (``kalm_data.readers.integrity``). For ``hf`` the fingerprint comes from the loaded
   dataset. Columns are checked first, so a mapping mistake fails fast on a large file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.utils import infer_compression

from kalm_data.errors import UsageError
from kalm_data.inputs import InputSpec
from kalm_data.readers import detect_format, task_name
from kalm_data.readers.columns import Peek, peek_csv, peek_jsonl, peek_parquet
from kalm_data.readers.hf import dataset_fingerprint, load
from kalm_data.readers.integrity import CHECKED, CorruptFile, scan
from kalm_data.validate import DEFAULT_COLUMNS

__all__ = ["InputError", "InputInfo", "check_corpus", "check_input"]

#: What may be a ``datasets`` hub id: ``name`` or ``org/name``.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


class InputError(UsageError, ValueError):
    """A problem with an input that stops the run; the message starts with the input's path."""


@dataclass(frozen=True)
class InputInfo:
    """What preflight learnt about a good input.

    ``columns``: the input's column names in order (JSONL: the keys of the sampled rows, in the
    order first seen). ``fields``: our field -> the input column it is read from, for every
    required and every mapped field. ``fingerprint``: as ``kalm_data.readers.fingerprint``.
    """

    path: str
    format: str
    task: str
    columns: tuple[str, ...]
    fields: dict[str, str]
    fingerprint: str


def check_input(
    spec: InputSpec, required: Sequence[str] = ("query", "positive"), role: str = "input"
) -> InputInfo:
    """Check the input ``spec`` (see the module contract) and describe it; ``InputError`` if not
    usable. ``role`` names how mappings are given in messages: ``"input"`` -> ``--map``, any
    other role (``"corpus"``) -> ``"<role> columns"``."""
    fmt = detect_format(spec)
    if fmt == "hf":
        ds = _load_dataset(spec)
        peek = Peek(tuple(ds.column_names), ds.num_rows > 0)
    else:
        _require_file(spec.path, fmt)
        peek = _peek_file(spec.path, fmt)
    if not peek.has_rows:
        raise InputError(f"{spec.path}: empty input: no rows")
    how = "--map" if role == "input" else f"{role} columns"
    fields = _resolve_fields(spec, peek.columns, required, how)
    if fmt == "hf":
        digest = dataset_fingerprint(spec.path, ds)
    else:
        digest = _scan(spec.path, _compression(spec.path, fmt))
    return InputInfo(spec.path, fmt, task_name(spec), peek.columns, fields, digest)


def check_corpus(spec: InputSpec) -> InputInfo:
    """``check_input`` for a corpus: it needs a ``text`` column (or ``spec.columns["text"]``)."""
    return check_input(spec, required=("text",), role="corpus")


def _require_file(path: str, fmt: str) -> None:
    kind = _locate(path)
    if kind == "missing":
        raise InputError(f"{path}: no such input file")
    if kind == "dir":
        raise InputError(f"{path}: is a directory, not a {fmt} file")


def _locate(path: str) -> str:
    """``"file"``, ``"dir"`` or ``"missing"`` (local path or any fsspec URL)."""
    try:
        fs, fs_path = fsspec.core.url_to_fs(path)
        if fs.isdir(fs_path):
            return "dir"
        return "file" if fs.exists(fs_path) else "missing"
    except (ValueError, ImportError, OSError) as e:
        raise InputError(f"{path}: cannot open: {_one_line(e)}") from e


def _load_dataset(spec: InputSpec) -> Any:
    """The ``datasets.Dataset`` of ``spec``, loaded as the reader loads it."""
    path = spec.path
    missing = _locate(path) == "missing"
    if missing and ("://" in path or not _HUB_ID.fullmatch(path)):
        raise InputError(f"{path}: no such input file")
    try:
        return load(path, spec.split)
    # datasets raises many types (ConnectionError offline, DataFilesNotFoundError, ValueError
    # for a split, Arrow errors): each is a problem with this input, to report in one line.
    except Exception as e:
        detail = _one_line(e)
        if detail.startswith(f"{path}: "):
            raise InputError(detail) from e
        if missing:
            raise InputError(
                f"{path}: no such input file, and loading it as a datasets hub id failed: {detail}"
            ) from e
        raise InputError(f"{path}: datasets cannot load it: {detail}") from e


def _peek_file(path: str, fmt: str) -> Peek:
    try:
        if fmt == "jsonl":
            return peek_jsonl(path)
        if fmt == "parquet":
            return peek_parquet(path)
        return peek_csv(path, "\t" if fmt == "tsv" else ",")
    except OSError as e:
        # A corrupt compressed file fails while reading its head: the full scan says how.
        _scan(path, _compression(path, fmt))
        raise InputError(f"{path}: cannot read input: {_one_line(e.__cause__ or e)}") from e
    except ValueError as e:
        raise InputError(_one_line(e)) from e


def _compression(path: str, fmt: str) -> str | None:
    """The compression the reader applies: inferred from the suffix, none for Parquet."""
    return None if fmt == "parquet" else infer_compression(path)


def _scan(path: str, compression: str | None) -> str:
    try:
        return scan(path, compression if compression in CHECKED else None)
    except CorruptFile as e:
        raise InputError(f"{path}: {e}") from e
    except OSError as e:
        raise InputError(f"{path}: cannot read input: {_one_line(e.__cause__ or e)}") from e


def _resolve_fields(
    spec: InputSpec, columns: tuple[str, ...], required: Sequence[str], how: str
) -> dict[str, str]:
    """Field -> column for each required field, then each other mapped field."""
    fields: dict[str, str] = {}
    for field in [*required, *(f for f in spec.columns if f not in required)]:
        fields[field] = _find_column(spec, columns, field, how)
    return fields


def _find_column(spec: InputSpec, columns: tuple[str, ...], field: str, how: str) -> str:
    if field in spec.columns:
        column = spec.columns[field]
        if column in columns:
            return column
        raise InputError(
            f"{spec.path}: column {column!r} (mapped by {how} {field}={column}) not found; "
            f"columns are: {list(columns)}{_suggestion([column], columns, field, how)}"
        )
    names = DEFAULT_COLUMNS.get(field) or (field,)
    found = next((c for c in names if c in columns), None)
    if found is not None:
        return found
    raise InputError(
        f"{spec.path}: no {field!r} column (looked for {'/'.join(names)}); columns are "
        f"{list(columns)}; map one with {how} {field}=COLUMN"
        f"{_suggestion(names, columns, field, how)}"
    )


def _suggestion(wanted: Iterable[str], columns: Sequence[str], field: str, how: str) -> str:
    """``"; did you mean --map field=col?"`` for the column closest to a wanted name, or ``""``."""
    for name in wanted:
        close = difflib.get_close_matches(name, columns, n=1)
        if close:
            return f"; did you mean {how} {field}={close[0]}?"
    return ""


def _one_line(e: BaseException) -> str:
    """The first non-blank line of an exception's message (its type's name if empty), followed
    by its direct cause's in parentheses (``datasets`` wraps the useful error in a generic one)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    text = lines[0] if lines else type(e).__name__
    if e.__cause__ is not None:
        text += f" ({_one_line(e.__cause__)})"
    return text
