"""A content-addressed, append-only embedding cache on any fsspec filesystem.

Layout: ``<root>/<teacher fingerprint>/<bucket>/<lo>-<hi>-<sha of keys>.npz``, each file
holding ``keys`` (hex text keys) and ``vectors`` (float32); ``lo``-``hi`` is the range of its
keys' positions (``kalm_data.embed.buckets.key_position``). Files are written to a temporary name
and renamed, so a killed run leaves only whole files, and everything it finished is reused by the
next run. A reader opens only the files of the bucket it asks for whose key range holds one of
the keys it asks for (an embedding group's keys span one narrow range), and keeps only the
vectors it asks for, so reads and memory follow the work at hand, not the size of the cache.

The cache is also how vectors reach mining: the embedding stage writes every vector here and
mining reads its task's by key (``vectors_of``), so no vector travels through the pipeline. On a
cluster the root must be shared by all workers (``gs://...``).
"""

from __future__ import annotations

import bisect
import hashlib
import io
import logging
import os
import uuid
from collections.abc import Mapping

import numpy as np

from kalm_data.embed.buckets import key_position, length_bucket

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
        for path in self._files_holding(bucket, wanted):
            with self.fs.open(path, "rb") as f, np.load(io.BytesIO(f.read())) as data:
                file_keys = data["keys"].tolist()
                rows = [i for i, k in enumerate(file_keys) if k in wanted and k not in found]
                if rows:
                    vectors = data["vectors"][rows]
                    found.update(zip((file_keys[i] for i in rows), vectors, strict=True))
            if len(found) == len(wanted):
                break
        return found

    def cached_keys(self, bucket: str, keys: list[str]) -> set[str]:
        """The keys among ``keys`` that have a vector in ``bucket``. Only the ``keys`` member of
        each file is read (the archive is opened in place: fsspec files seek), not its
        vectors."""
        wanted, found = set(keys), set()
        for path in self._files_holding(bucket, wanted):
            with self.fs.open(path, "rb") as f, np.load(f) as data:
                found.update(wanted.intersection(data["keys"].tolist()))
            if len(found) == len(wanted):
                break
        return found

    def vectors_of(self, texts: Mapping[str, str]) -> dict[str, np.ndarray]:
        """The cached vectors of ``texts`` (text key -> text; the text gives the bucket)."""
        return self.vectors_in({key: length_bucket(text) for key, text in texts.items()})

    def vectors_in(self, buckets: Mapping[str, str]) -> dict[str, np.ndarray]:
        """The cached vectors of the keys of ``buckets`` (text key -> its length bucket)."""
        by_bucket: dict[str, list[str]] = {}
        for key, bucket in buckets.items():
            by_bucket.setdefault(bucket, []).append(key)
        found: dict[str, np.ndarray] = {}
        for bucket, keys in sorted(by_bucket.items()):
            found.update(self.get(bucket, keys))
        return found

    def _files_holding(self, bucket: str, wanted: set[str]) -> list[str]:
        """The bucket's files, in name order, whose key range holds a position of ``wanted``
        (a file whose name has no range is always read)."""
        folder = f"{self.base}/{bucket}"
        if not wanted or not self.fs.exists(folder):
            return []
        positions = sorted(key_position(k) for k in wanted)
        out = []
        for path in sorted(self.fs.glob(f"{folder}/*.npz")):
            span = _key_range(path)
            if span is None or _any_within(positions, *span):
                out.append(path)
        return out

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


def _any_within(sorted_positions: list[int], low: int, high: int) -> bool:
    """Whether some position of ``sorted_positions`` lies in [low, high]."""
    i = bisect.bisect_left(sorted_positions, low)
    return i < len(sorted_positions) and sorted_positions[i] <= high
