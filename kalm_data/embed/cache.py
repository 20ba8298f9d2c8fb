"""A content-addressed, append-only embedding cache on any fsspec filesystem.

Layout: ``<root>/<teacher fingerprint>/<bucket>/<sha of keys>.npz``, each file holding ``keys``
(text keys) and ``vectors`` (float32). Files are written to a temporary name and renamed, so a
killed run leaves only whole files, and everything it finished is reused by the next run.
A reader loads only the files of the buckets it asks for, so memory follows the work at hand.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import uuid

import numpy as np

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
        self._loaded: dict[str, dict[str, np.ndarray]] = {}

    def _bucket(self, bucket: str) -> dict[str, np.ndarray]:
        if bucket not in self._loaded:
            found: dict[str, np.ndarray] = {}
            folder = f"{self.base}/{bucket}"
            files = sorted(self.fs.glob(f"{folder}/*.npz")) if self.fs.exists(folder) else []
            for path in files:
                with self.fs.open(path, "rb") as f, np.load(io.BytesIO(f.read())) as data:
                    found.update(zip(data["keys"].tolist(), data["vectors"], strict=True))
            self._loaded[bucket] = found
        return self._loaded[bucket]

    def get(self, bucket: str, keys: list[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys`` (missing keys are absent from the result)."""
        known = self._bucket(bucket)
        return {k: known[k] for k in keys if k in known}

    def put(self, bucket: str, keys: list[str], vectors: np.ndarray) -> None:
        """Store ``vectors`` (len(keys), dim) atomically as one new file of ``bucket``."""
        if not keys:
            return
        name = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
        folder = f"{self.base}/{bucket}"
        self.fs.makedirs(folder, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, keys=np.array(keys), vectors=np.asarray(vectors, dtype=np.float32))
        tmp = f"{folder}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open(tmp, "wb") as f:
            f.write(buf.getvalue())
        self.fs.mv(tmp, f"{folder}/{name}.npz")
        self._bucket(bucket).update(zip(keys, vectors, strict=True))
