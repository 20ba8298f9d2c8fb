"""Evaluation sets for ``--decontaminate``: every text of a set, with its set name, kind and id.

Accepted forms (``check_eval_set`` tells which, or raises ``UsageError`` naming the path):

- a BEIR folder: ``queries.jsonl`` (kind ``query``) and/or ``corpus.jsonl`` (kind
  ``document``; ``title`` and ``text`` together), each row with ``_id`` and ``text``
  (``.jsonl.gz`` too);
- a JSON Lines file of texts: field ``text``, optional ``id`` (else the 1-based line number),
  kind ``text``;
- a ``datasets`` folder written by ``save_to_disk`` or a hub id (cached: runs are offline): every
  split, column ``text`` (+ ``title``), id from ``_id`` or ``id`` (else the row number); a split
  named ``queries`` / ``corpus`` gives kind ``query`` / ``document``.

The set's *name* (``eval_set_name``) is the folder or file name without suffix, or the hub id:
never an absolute path, so rejected rows and the manifest can be published.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator

from kalm_data.errors import UsageError
from kalm_data.stages.decontaminate import EvalRef

_BEIR_FILES = {"queries": "query", "corpus": "document"}
_SUFFIXES = (".jsonl.gz", ".jsonl", ".json")


def _beir_file(folder: str, stem: str) -> str | None:
    for suffix in (".jsonl", ".jsonl.gz"):
        path = os.path.join(folder, stem + suffix)
        if os.path.isfile(path):
            return path
    return None


def _is_path(spec: str) -> bool:
    """True when ``spec`` looks like a local path (not a hub id ``org/name``)."""
    return os.path.exists(spec) or spec.startswith(("/", ".", "~")) or spec.endswith(_SUFFIXES)


def eval_set_kind(spec: str) -> str:
    """``beir``, ``jsonl`` or ``hf``; ``UsageError`` naming ``spec`` when it is none of them."""
    from kalm_data.readers.hf import is_saved_dataset

    if os.path.isdir(spec):
        if is_saved_dataset(spec):
            return "hf"
        if any(_beir_file(spec, stem) for stem in _BEIR_FILES):
            return "beir"
        raise UsageError(
            f"--decontaminate {spec}: a folder without queries.jsonl or corpus.jsonl "
            "(BEIR) and not a saved dataset"
        )
    if os.path.isfile(spec):
        return "jsonl"
    if _is_path(spec):
        raise UsageError(f"--decontaminate {spec}: no such file or folder")
    return "hf"


def check_eval_set(spec: str) -> str:
    """Preflight: ``spec``'s kind, after checking it can be read (``UsageError`` otherwise)."""
    kind = eval_set_kind(spec)
    if kind == "hf":
        try:
            _load_all(spec)
        except Exception as e:  # datasets raises many types; the user needs one line
            raise UsageError(
                f"--decontaminate {spec}: no such file or folder, and not a dataset that loads "
                f"(offline: from the cache): {' '.join(str(e).split())}"
            ) from e
    return kind


def eval_set_name(spec: str) -> str:
    """The name a set is recorded by (module docstring)."""
    if eval_set_kind(spec) == "hf" and not os.path.isdir(spec):
        return spec
    name = os.path.basename(os.path.abspath(os.path.expanduser(spec)))
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _jsonl(path: str) -> Iterator[tuple[int, dict]]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if line.strip():
                yield line_no, json.loads(line)


def _text(row: dict) -> str:
    title, text = row.get("title") or "", row.get("text") or ""
    return f"{title} {text}".strip() if title else str(text)


def _row_id(row: dict, default: int) -> str:
    given = row.get("_id", row.get("id"))
    return str(given) if given is not None else str(default)


def _load_all(spec: str):
    """The ``datasets.DatasetDict`` (every split) at ``spec``."""
    import datasets

    from kalm_data.readers.hf import is_saved_dataset

    ds = datasets.load_from_disk(spec) if is_saved_dataset(spec) else datasets.load_dataset(spec)
    return ds if isinstance(ds, datasets.DatasetDict) else datasets.DatasetDict({"data": ds})


def read_eval_texts(spec: str) -> Iterator[tuple[EvalRef, str]]:
    """(ref, text) of every text of the evaluation set ``spec``, streamed."""
    name, kind = eval_set_name(spec), eval_set_kind(spec)
    if kind == "beir":
        for stem, text_kind in _BEIR_FILES.items():
            path = _beir_file(spec, stem)
            for line_no, row in _jsonl(path) if path else ():
                ref = EvalRef(name, text_kind, _row_id(row, line_no))
                yield ref, _text(row)
                if row.get("title") and row.get("text"):
                    yield ref, str(row["text"])  # the body alone can be copied exactly too
    elif kind == "jsonl":
        for line_no, row in _jsonl(spec):
            yield EvalRef(name, "text", _row_id(row, line_no)), _text(row)
    else:
        for split, ds in _load_all(spec).items():
            text_kind = _BEIR_FILES.get(split, "text")
            for i, row in enumerate(ds.with_format(None), 1):
                yield EvalRef(name, text_kind, _row_id(row, i)), _text(row)
