"""The export's output folder: what may be replaced, staging, and the commit.

Layout of OUT: ``data/`` (the task files), the target's extra files (``prompts.json`` for
sentence-transformers) and ``export.json``, the record: written last (the completion marker),
it lists every file the export wrote. While an export runs it also holds a staging folder
``.kalm-data-export-staging-*``, removed when the export ends, however it ends.

Contract:
- ``check_output`` runs before anything is written. It refuses (``UsageError``, one line) an
  OUT that is a file, that lies inside the curated folder or is that folder (an export reads
  only DIR), or that is not empty unless ``overwrite``. With ``overwrite`` it refuses an OUT
  holding, under ``data/`` or at a top-level name the export writes, a file no earlier export
  recorded (a stray file under ``data/`` would be loaded as training data by FlagEmbedding's
  and KaLM's folder loaders); otherwise it returns the files of the earlier export to replace.
  Files elsewhere in OUT are left alone.
- ``staging`` gives a fresh folder inside OUT where every file is written first.
- ``commit`` first rewrites export.json to list the old and the new files (so a kill at any
  point leaves a record of every file of ours), removes the old files, moves each staged file
  into place with an atomic rename, then writes the final export.json atomically (temp file +
  rename). Nothing the export did not write is ever deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kalm_data.errors import UsageError

RECORD = "export.json"
#: The key that marks a record as written by ``kalm-data export`` (its value: the version).
MARK = "kalm_data_export"
DATA = "data"
STAGING_PREFIX = ".kalm-data-export-staging-"


def read_record(out: Path) -> dict[str, Any] | None:
    """OUT's export.json when an earlier export wrote it, else None."""
    try:
        record = json.loads((out / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or MARK not in record:
        return None
    if not isinstance(record.get("files"), list):
        return None
    return record


def _check_apart(out: Path, source: str) -> None:
    if "://" in source:
        return
    src = Path(source).resolve()
    dst = out.resolve()
    if dst == src or src in dst.parents:
        raise UsageError(
            f"--output {out} is inside the curated folder {source}: export only reads DIR; "
            "choose an --output outside it"
        )


def _ours_to_write(out: Path, top_level: Iterable[str]) -> list[str]:
    """Existing files at paths an export writes: under data/ and the top-level names."""
    found = [rel for rel in top_level if (out / rel).is_file()]
    if (out / DATA).is_dir():
        found += [p.relative_to(out).as_posix() for p in (out / DATA).rglob("*") if p.is_file()]
    return sorted(found)


def check_output(output: str, source: str, overwrite: bool, top_level: Iterable[str]) -> list[str]:
    """The files of an earlier export that this one replaces (see the module docstring)."""
    out = Path(output)
    _check_apart(out, source)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {output} is a file, not a folder")
    present = list(out.iterdir()) if out.exists() else []
    if not [p for p in present if not p.name.startswith(STAGING_PREFIX)]:
        return []
    record = read_record(out)
    if not overwrite:
        what = f"an earlier export of {record.get('created')}" if record else "other files"
        raise UsageError(
            f"--output {output} is not empty ({what}); pass --overwrite to replace an earlier "
            "export, or choose an empty folder"
        )
    owned = {f for f in (record or {}).get("files", []) if isinstance(f, str)}
    foreign = [f for f in _ours_to_write(out, [RECORD, *top_level]) if f not in owned]
    if record is not None:
        foreign = [f for f in foreign if f != RECORD]
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise UsageError(
            f"{out / foreign[0]}{more} not written by kalm-data export: --overwrite replaces "
            "only the export's own files; move them away or choose another --output"
        )
    return sorted(f for f in owned if (out / f).is_file())


@contextlib.contextmanager
def staging(output: str) -> Iterator[Path]:
    """A fresh staging folder inside OUT, removed on exit (success or not)."""
    out = Path(output)
    try:
        out.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
    except OSError as err:
        raise UsageError(f"--output {output} is not writable: {err.strerror or err}") from err
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented UTF-8 JSON at ``path``, atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _remove_empty_dirs(top: Path) -> None:
    if not top.is_dir():
        return
    for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()
    if not any(top.iterdir()):
        top.rmdir()


def commit(
    output: str, stage: Path, files: list[str], record: dict[str, Any], replaced: list[str]
) -> None:
    """Swap the staged ``files`` in for ``replaced`` and write ``record`` (see module doc)."""
    out = Path(output)
    write_json(out / RECORD, {**record, "complete": False, "files": sorted({*replaced, *files})})
    for rel in replaced:
        if rel not in files:
            (out / rel).unlink(missing_ok=True)
    _remove_empty_dirs(out / DATA)
    for rel in files:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / rel, target)
    write_json(out / RECORD, {**record, "complete": True, "files": sorted(files)})
