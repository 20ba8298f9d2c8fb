"""``datasets`` reader: a directory written by ``save_to_disk``, or anything ``load_dataset`` takes
(a hub id such as ``org/name``, a local data folder).

Contract: ``source_row`` is the 1-based row number in the split; ``payload`` has the dataset's
own column names with plain Python values (any saved format such as numpy is dropped; float NaN
-> None). A saved ``DatasetDict`` and a hub dataset are read at ``split``. ``datasets`` is
imported lazily: it is heavy, and only this reader needs it.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator
from typing import Any

import fsspec

from kalm_data.readers.common import clean_values, sha256_file
from kalm_data.records import RawRow

#: Files ``save_to_disk`` writes at the top of a dataset (``Dataset``, ``DatasetDict``) directory.
SAVED_MARKERS = ("state.json", "dataset_dict.json")


def is_saved_dataset(path: str) -> bool:
    """True when ``path`` (local or any fsspec URL) is a directory written by ``save_to_disk``."""
    try:
        fs, fs_path = fsspec.core.url_to_fs(path)
        return fs.isdir(fs_path) and any(
            fs.isfile(posixpath.join(fs_path, name)) for name in SAVED_MARKERS
        )
    except (ValueError, ImportError, OSError):
        return False  # e.g. a hub id that looks like a URL of an unknown protocol


def load(path: str, split: str) -> Any:
    """The ``datasets.Dataset`` at ``path``: ``load_from_disk`` if saved, else ``load_dataset``."""
    import datasets

    if not is_saved_dataset(path):
        return datasets.load_dataset(path, split=split)
    ds = datasets.load_from_disk(path)
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise ValueError(f"{path}: no split {split!r}; the saved splits are {list(ds)}")
        ds = ds[split]
    return ds


def read_hf(path: str, task: str, split: str = "train") -> Iterator[RawRow]:
    """Yield every row of the dataset at ``path`` (split ``split``), one at a time."""
    ds = load(path, split).with_format(None)
    for i, row in enumerate(ds, start=1):
        yield RawRow(source_file=path, source_row=i, task=task, payload=clean_values(row))


def hf_fingerprint(path: str, split: str = "train") -> str:
    """sha256 hex of the saved dataset's data files, or of the hub dataset's ``_fingerprint``.

    A saved directory is hashed by content (its ``_fingerprint`` is not tied to the bytes on
    disk); a hub download is identified by the fingerprint ``datasets`` derives from its
    config and revision, without rereading gigabytes of Arrow.
    """
    return dataset_fingerprint(path, load(path, split))


def dataset_fingerprint(path: str, ds: Any) -> str:
    """``hf_fingerprint`` of ``ds``, the dataset already loaded from ``path``."""
    digest = hashlib.sha256()
    files = [f["filename"] for f in ds.cache_files] if is_saved_dataset(path) else []
    for name in files:
        sha256_file(name, digest)
    if not files:  # a hub dataset, or a saved one held in memory
        digest.update(ds._fingerprint.encode())
    return digest.hexdigest()
