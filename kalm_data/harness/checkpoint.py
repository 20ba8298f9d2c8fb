"""Stage checkpoints: content-addressed, marked complete, reused by a rerun, collected after use.

Layout: ``OUTPUT/.kalm-data/checkpoints/<stage>-<key>/`` holds one folder per named collection
of the stage's output, each with ``part-NNNNN-of-NNNNN.jsonl.gz`` files (one element per line,
``encode``d), and ``_SUCCESS.json``, written last, listing every part and how many elements it
holds. The folder lives outside the staging folder, so a failed or killed run keeps it.

Contract:
- ``stage_key(parts)`` hashes the canonical JSON of everything the stage's output depends on
  (input fingerprints, versions, the settings the stage reads, the keys of the stages before
  it): same inputs and settings, same key; any change, another folder.
- A part is written to a hidden temporary name and renamed; the marker is written only after
  every part, so a checkpoint is ``done()`` (marker present, every part it lists present) or not
  there at all. A checkpoint that is not done is ``reset()`` (removed) before it is written again.
- Elements are stored as JSON, never pickled: reading a checkpoint back builds only the record
  models listed in ``MODELS``, the ``Tally`` counts (``kalm_data.beam.counts``) and plain values
  (tuples, lists, dicts, str, int, float, bool, None), so nothing read from disk can load code.
  Floats round-trip exactly (``repr`` precision).
- ``remove_unused(root, keep)`` removes every checkpoint folder but those named in ``keep``; call
  it with the output locked, after a successful commit.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import os
import re
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel

from kalm_data import __version__
from kalm_data.records import (
    SCHEMA_VERSION,
    Example,
    InputPair,
    RawRow,
    RejectedRecord,
    TrainingExample,
)
from kalm_data.writers.commit import PRIVATE

log = logging.getLogger(__name__)

#: Bump when the layout or the element encoding changes: every earlier checkpoint is then unused.
#: 2: "mined" holds one (task, row) element per kept row, not one (task, rows) per task.
FORMAT = 2
MARKER = "_SUCCESS.json"
#: The record models a checkpoint may hold, by name (the only classes ``decode`` builds).
MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m for m in (RawRow, InputPair, Example, TrainingExample, RejectedRecord)
}
_FOLDER = re.compile(r"^(?P<stage>[a-z][a-z0-9_]*)-(?P<key>[0-9a-f]{16})$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def checkpoint_root(output: str) -> str:
    """The checkpoints folder of ``output``."""
    return f"{output.rstrip('/')}/{PRIVATE}/checkpoints"


def stage_key(parts: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of ``parts`` as canonical JSON (with the format, kalm-data
    and schema versions)."""
    body = {"format": FORMAT, "kalm_data": __version__, "schema": SCHEMA_VERSION, **parts}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def files_signature(path: str) -> list:
    """What stands for the content of a local file or folder in a key, without reading it: the
    relative path, size and modification time of each file (``[]`` for a path that is not a
    local file or folder, such as a dataset id; the caller keys it by its name)."""
    if os.path.isfile(path):
        st = os.stat(path)
        return [[os.path.basename(path), st.st_size, st.st_mtime_ns]]
    out = []
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            st = os.stat(full)
            out.append([os.path.relpath(full, path), st.st_size, st.st_mtime_ns])
    return out


# Element encoding ---------------------------------------------------------------------------


def _dataclasses() -> dict[str, type]:
    """The dataclasses a checkpoint may hold, by name (imported here: they live by Beam code)."""
    from kalm_data.beam.counts import Tally

    return {"Tally": Tally}


def to_json_value(x: Any) -> Any:
    """``x`` as a JSON value that ``from_json_value`` turns back into an equal ``x``."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        name = type(x).__name__
        if _dataclasses().get(name) is not type(x):
            raise TypeError(f"cannot checkpoint a {name}: not a known dataclass")
        fields = {f.name: to_json_value(getattr(x, f.name)) for f in dataclasses.fields(x)}
        return {"$dataclass": name, "$data": fields}
    if isinstance(x, BaseModel):
        name = type(x).__name__
        if MODELS.get(name) is not type(x):
            raise TypeError(f"cannot checkpoint a {name}: not one of {sorted(MODELS)}")
        return {"$model": name, "$data": x.model_dump(mode="json")}
    if isinstance(x, tuple):
        return {"$tuple": [to_json_value(v) for v in x]}
    if isinstance(x, list):
        return [to_json_value(v) for v in x]
    if isinstance(x, dict):
        if not all(isinstance(k, str) for k in x):
            raise TypeError("cannot checkpoint a dict with keys that are not str")
        items = {k: to_json_value(v) for k, v in x.items()}
        # A key starting with "$" would read as a tag: such dicts are stored as pairs.
        return {"$dict": list(items.items())} if any(k.startswith("$") for k in x) else items
    raise TypeError(f"cannot checkpoint a {type(x).__name__}")


def from_json_value(v: Any) -> Any:
    """The inverse of ``to_json_value``."""
    if isinstance(v, list):
        return [from_json_value(x) for x in v]
    if not isinstance(v, dict):
        return v
    if "$model" in v:
        model = MODELS.get(v["$model"])
        if model is None:
            raise ValueError(f"checkpoint holds an unknown record type {v['$model']!r}")
        return model.model_validate(v["$data"])
    if "$dataclass" in v:
        cls = _dataclasses().get(v["$dataclass"])
        if cls is None:
            raise ValueError(f"checkpoint holds an unknown record type {v['$dataclass']!r}")
        return cls(**{k: from_json_value(x) for k, x in v["$data"].items()})
    if "$tuple" in v:
        return tuple(from_json_value(x) for x in v["$tuple"])
    if "$dict" in v:
        return {k: from_json_value(x) for k, x in v["$dict"]}
    return {k: from_json_value(x) for k, x in v.items()}


def encode(x: Any) -> str:
    """One element as one line of JSON (no newline)."""
    return json.dumps(to_json_value(x), ensure_ascii=False, separators=(",", ":"))


def decode(line: str) -> Any:
    return from_json_value(json.loads(line))


def shard_of(line: str, shards: int) -> int:
    """The part an encoded element goes to: a stable hash, the same on every worker and run."""
    return zlib.crc32(line.encode("utf-8")) % shards


# Checkpoint folders -------------------------------------------------------------------------


def _fs(path: str):
    import fsspec

    return fsspec.core.url_to_fs(path)


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """The checkpoint of one stage for one key, under ``root`` (``checkpoint_root(OUTPUT)``)."""

    root: str
    stage: str
    key: str

    def __post_init__(self):
        if not _FOLDER.match(self.name):
            raise ValueError(f"bad checkpoint name {self.name!r}: a-z stage, 16 hex digit key")

    @property
    def name(self) -> str:
        return f"{self.stage}-{self.key}"

    @property
    def folder(self) -> str:
        return f"{self.root.rstrip('/')}/{self.name}"

    @property
    def marker(self) -> str:
        return f"{self.folder}/{MARKER}"

    def part(self, collection: str, shard: int, shards: int) -> str:
        """Path (relative to ``folder``) of one part of ``collection``."""
        if not _NAME.match(collection):
            raise ValueError(f"bad collection name {collection!r}")
        return f"{collection}/part-{shard:05d}-of-{shards:05d}.jsonl.gz"

    def read_marker(self) -> dict | None:
        """The marker, or None when there is none (or it does not parse)."""
        fs, path = _fs(self.marker)
        try:
            with fs.open(path, "r", encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("key") == self.key else None

    def done(self) -> bool:
        """True when the marker and every part it lists are present."""
        marker = self.read_marker()
        if marker is None:
            return False
        fs, folder = _fs(self.folder)
        parts = [p for files in marker.get("parts", {}).values() for p in files]
        return all(fs.exists(f"{folder}/{p}") for p in parts)

    def reset(self) -> None:
        """Remove what a killed or failed run left of this checkpoint."""
        fs, folder = _fs(self.folder)
        if fs.exists(folder):
            fs.rm(folder, recursive=True)


def write_part(ckpt: Checkpoint, collection: str, shard: int, shards: int, lines) -> dict:
    """Write encoded ``lines`` as one gzip part, atomically; returns its marker entry. Level 1:
    a checkpoint is read once or twice, and level 9 spent 4 of the 32 s of a warm rerun on
    22,043 pairs compressing it."""
    fs, folder = _fs(ckpt.folder)
    rel = ckpt.part(collection, shard, shards)
    target = f"{folder}/{rel}"
    fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    tmp = f"{target.rsplit('/', 1)[0]}/.tmp-{uuid.uuid4().hex}"
    n = 0
    with (
        fs.open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=1, mtime=0) as f,
    ):
        for line in lines:
            f.write(line.encode("utf-8") + b"\n")
            n += 1
    fs.mv(tmp, target)
    return {"collection": collection, "path": rel, "elements": n}


def read_part(ckpt: Checkpoint, rel: str) -> Iterator[Any]:
    """The elements of one part."""
    fs, folder = _fs(ckpt.folder)
    with fs.open(f"{folder}/{rel}", "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as f:
        for line in f:
            yield decode(line.decode("utf-8"))


def write_marker(ckpt: Checkpoint, entries: Iterable[dict], collections: Iterable[str]) -> dict:
    """Write the marker listing ``entries`` (``write_part``'s); the last write of a checkpoint."""
    from kalm_data.writers.manifest import write_json

    parts: dict[str, list[str]] = {c: [] for c in sorted(collections)}
    elements: dict[str, int] = dict.fromkeys(parts, 0)
    for e in sorted(entries, key=lambda e: e["path"]):
        parts[e["collection"]].append(e["path"])
        elements[e["collection"]] += e["elements"]
    marker = {
        "format": FORMAT,
        "stage": ckpt.stage,
        "key": ckpt.key,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "elements": elements,
        "parts": parts,
    }
    write_json(marker, ckpt.marker)
    return marker


# Listing and garbage collection ------------------------------------------------------------


def list_checkpoints(root: str) -> list[tuple[Checkpoint, bool]]:
    """Every checkpoint folder under ``root``, with whether it is done, by name."""
    fs, base = _fs(root)
    if not fs.exists(base):
        return []
    out = []
    for path in sorted(fs.ls(base, detail=False)):
        m = _FOLDER.match(path.rstrip("/").rsplit("/", 1)[-1])
        if m:
            ckpt = Checkpoint(root, m["stage"], m["key"])
            out.append((ckpt, ckpt.done()))
    return out


def remove_unused(root: str, keep: Iterable[str]) -> list[str]:
    """Remove every checkpoint folder under ``root`` whose name is not in ``keep`` (and stray
    files); returns the names removed. Only kalm-data's own folder names are touched."""
    fs, base = _fs(root)
    if not fs.exists(base):
        return []
    keep = set(keep)
    removed = []
    for path in sorted(fs.ls(base, detail=False)):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name in keep or not (_FOLDER.match(name) or name.startswith(".tmp-")):
            continue
        fs.rm(path, recursive=True)
        removed.append(name)
    if removed:
        log.info("removed %d unused checkpoint(s) from %s", len(removed), root)
    return removed
