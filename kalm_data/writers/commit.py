"""An output folder's life: what a run may replace, staging, and the commit.

Layout of ``OUTPUT/``: ``data/`` and ``rejected/`` (part files), ``manifest.json`` (written
last: the completion marker, listing every file the run wrote) and ``.kalm-data/`` (the lock,
the staging folder of a running job, and the commit journal).

Contract:
- ``replaceable_files`` runs before anything is written. It refuses (``UsageError``) an output
  that is a file, is not writable, or holds ``data/``, ``rejected/`` or ``manifest.json`` that
  kalm-data did not write; an earlier kalm-data output is replaced only with ``overwrite``, and
  then only the files its manifest lists. Nothing the tool did not write is ever deleted.
- A run writes under ``staging_dir(OUTPUT)``. ``commit`` writes a journal of the files it is
  about to remove and add, removes the old manifest, then the old files, moves the staged files
  into place one by one, and returns their paths; the caller writes the manifest and calls
  ``finish``. A kill at any point leaves either the previous output (before the swap) or files
  the journal names as kalm-data's, which the next run with ``overwrite`` replaces.
"""

from __future__ import annotations

import json
import re

from kalm_data.errors import UsageError

MANIFEST = "manifest.json"
OUTPUTS = ("data", "rejected")
PRIVATE = ".kalm-data"
JOURNAL = "commit.json"
#: The only paths kalm-data writes under data/ and rejected/ (a folder never starts with ".").
PART_FILE = re.compile(r"^(data|rejected)/(?!\.)[^/]+/part-\d{5}-of-\d{5}\.parquet$")


def _fs(output: str):
    import fsspec

    fs, root = fsspec.core.url_to_fs(output)
    return fs, root.rstrip("/")


def staging_dir(output: str) -> str:
    return f"{output.rstrip('/')}/{PRIVATE}/staging"


def clear_staging(output: str) -> None:
    """Remove the staging folder a killed or refused run left (it holds only our files)."""
    fs, root = _fs(output)
    if fs.exists(f"{root}/{PRIVATE}/staging"):
        fs.rm(f"{root}/{PRIVATE}/staging", recursive=True)


def _read_json(fs, path: str) -> dict | None:
    try:
        with fs.open(path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _files_under(fs, root: str) -> list[str]:
    """Relative paths of every file under ``root``/data and ``root``/rejected."""
    out = []
    for name in OUTPUTS:
        if fs.exists(f"{root}/{name}"):
            out.extend(p[len(root) + 1 :] for p in fs.find(f"{root}/{name}"))
    return sorted(out)


def _owned(fs, root: str, manifest: dict | None) -> set[str] | None:
    """The files kalm-data wrote here (from the manifest and the commit journal), or None when
    nothing shows that kalm-data wrote this folder."""
    journal = _read_json(fs, f"{root}/{PRIVATE}/{JOURNAL}")
    if manifest is None and journal is None:
        return None
    listed: list = []
    for record in (manifest, journal):
        if record is not None:
            files = record.get("files")
            # Manifests before 0.2 list no files: their part files are the tool's.
            listed += files if isinstance(files, list) else _files_under(fs, root)
    return {f for f in listed if isinstance(f, str) and PART_FILE.match(f)}


def check_writable(output: str) -> None:
    """Create ``output`` if needed; ``UsageError`` when it is a file or cannot be written."""
    fs, root = _fs(output)
    if fs.exists(root) and not fs.isdir(root):
        raise UsageError(f"--output {output} is a file, not a folder")
    try:
        fs.makedirs(f"{root}/{PRIVATE}", exist_ok=True)
        probe = f"{root}/{PRIVATE}/.write-test"
        with fs.open(probe, "wb") as f:
            f.write(b"ok")
        fs.rm(probe)
    except OSError as e:
        raise UsageError(f"--output {output} is not writable: {e.strerror or e}") from e


def replaceable_files(output: str, overwrite: bool) -> list[str]:
    """The files of an earlier kalm-data output that this run will replace (see module doc)."""
    fs, root = _fs(output)
    present = [n for n in (*OUTPUTS, MANIFEST) if fs.exists(f"{root}/{n}")]
    if not present:
        return []
    manifest = _read_json(fs, f"{root}/{MANIFEST}")
    if manifest is not None and "kalm_data_version" not in manifest:
        manifest = None
    owned = _owned(fs, root, manifest)
    if owned is None:
        raise UsageError(
            f"--output {output} already holds {', '.join(present)}, not written by kalm-data "
            "(no kalm-data manifest.json); nothing was changed: choose a new or empty folder"
        )
    if not overwrite:
        when = (manifest or {}).get("created", "an unfinished commit")
        raise UsageError(
            f"--output {output} holds an earlier kalm-data output ({when}); "
            "pass --overwrite to replace it, or choose another folder"
        )
    foreign = [f for f in _files_under(fs, root) if f not in owned]
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise UsageError(
            f"{root}/{foreign[0]}{more} not written by kalm-data: --overwrite replaces only "
            "kalm-data's own files; move them away or choose another --output"
        )
    return sorted(f for f in owned if fs.exists(f"{root}/{f}"))


def _remove_empty_dirs(fs, root: str) -> None:
    """Remove the folders under data/ and rejected/ (and those two) left empty."""
    for name in OUTPUTS:
        top = f"{root}/{name}"
        if not fs.exists(top):
            continue
        folders = {top, *(p for p in fs.find(top, withdirs=True) if fs.isdir(p))}
        for folder in sorted(folders, key=len, reverse=True):
            if fs.exists(folder) and not fs.ls(folder):
                fs.rmdir(folder)


def commit(output: str, replaced: list[str]) -> list[str]:
    """Swap the staged files in for ``replaced``; returns the relative paths now in place."""
    from kalm_data.writers.manifest import write_json

    fs, root = _fs(output)
    staging = f"{root}/{PRIVATE}/staging"
    staged = _files_under(fs, staging)
    new = [f for f in staged if PART_FILE.match(f)]
    write_json({"files": sorted({*replaced, *new})}, f"{output.rstrip('/')}/{PRIVATE}/{JOURNAL}")
    if fs.exists(f"{root}/{MANIFEST}"):
        fs.rm(f"{root}/{MANIFEST}")
    for rel in replaced:
        if fs.exists(f"{root}/{rel}"):
            fs.rm(f"{root}/{rel}")
    _remove_empty_dirs(fs, root)
    for rel in new:
        target = f"{root}/{rel}"
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.mv(f"{staging}/{rel}", target)
    return new


def finish(output: str) -> None:
    """After the manifest is written: drop the journal and the staging folder."""
    fs, root = _fs(output)
    if fs.exists(f"{root}/{PRIVATE}/{JOURNAL}"):
        fs.rm(f"{root}/{PRIVATE}/{JOURNAL}")
    clear_staging(output)
