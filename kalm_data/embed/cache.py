"""A content-addressed, append-only embedding cache on any fsspec filesystem.

Layout: ``<root>/<teacher fingerprint>/<bucket>/<lo>-<hi>-<sha of keys>.npz``, each file
holding ``keys`` (hex text keys) and ``vectors`` (float32); ``lo``-``hi`` is the range of its
keys' positions (``kalm_data.embed.buckets.key_position``). Files are written to a temporary name
and renamed, so a killed run leaves only whole files, and everything it finished is reused by the
next run. A reader opens only the files of the bucket it asks for whose key range overlaps the
keys it asks for (an embedding group's keys span one narrow range), and keeps only the vectors it
asks for, so reads and memory follow the work at hand, not the size of the cache.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import uuid

import numpy as np

from kalm_data.embed.buckets import key_position

log = logging.getLogger(__name__)


def default_cache_dir() -> str:
    """``$KALM_DATA_CACHE`` or ``~/.cache/kalm_data/embeddings``."""
    return os.environ.get("KALM_DATA_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "kalm_data", "embeddings"
    )


class EmbeddingCache:
    """Embeddings by text key, for one teacher."""

    def __init__(self, root: str, teacher_fingerprint: str):
        import fsspec

        self.fs, base = fsspec.core.url_to_fs(root)
        self.base = f"{base.rstrip('/')}/{teacher_fingerprint}"

    def get(self, bucket: str, keys: list[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys`` (missing keys are absent from the result).

        The bucket's files are read one at a time and only the vectors asked for are kept, so
        memory follows ``keys``, not the bucket: a worker holds the vectors of its own group."""
        wanted = set(keys)
        found: dict[str, np.ndarray] = {}
        folder = f"{self.base}/{bucket}"
        if not wanted or not self.fs.exists(folder):
            return found
        positions = [key_position(k) for k in wanted]
        low, high = min(positions), max(positions)
        for path in sorted(self.fs.glob(f"{folder}/*.npz")):
            span = _key_range(path)
            if span is not None and (span[1] < low or span[0] > high):
                continue
            with self.fs.open(path, "rb") as f, np.load(io.BytesIO(f.read())) as data:
                file_keys = data["keys"].tolist()
                rows = [i for i, k in enumerate(file_keys) if k in wanted and k not in found]
                if rows:
                    vectors = data["vectors"][rows]
                    found.update(zip((file_keys[i] for i in rows), vectors, strict=True))
            if len(found) == len(wanted):
                break
        return found

    def put(self, bucket: str, keys: list[str], vectors: np.ndarray) -> None:
        """Store ``vectors`` (len(keys), dim) atomically as one new file of ``bucket``."""
        if not keys:
            return
        positions = [key_position(k) for k in keys]
        digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
        name = f"{min(positions):08x}-{max(positions):08x}-{digest}"
        folder = f"{self.base}/{bucket}"
        self.fs.makedirs(folder, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, keys=np.array(keys), vectors=np.asarray(vectors, dtype=np.float32))
        tmp = f"{folder}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open(tmp, "wb") as f:
            f.write(buf.getvalue())
        self.fs.mv(tmp, f"{folder}/{name}.npz")


def _key_range(path: str) -> tuple[int, int] | None:
    """(lowest, highest) key position in a cache file's name; ``None`` for a name without one
    (a file written before names carried ranges: always read)."""
    parts = os.path.basename(path).split("-")
    if len(parts) != 3:
        return None
    try:
        return int(parts[0], 16), int(parts[1], 16)
    except ValueError:
        return None
