"""Text normalisation and content keys.

Contract: ``normalize`` is idempotent (NFC, whitespace runs folded to one space, stripped);
``text_key`` is the content address of a normalised text (used by dedup, the embedding cache and
the join of embeddings back to tasks); ``derive_id`` gives a stable id from an example's content.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFC-normalise, fold every whitespace run to one space, strip."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def text_key(text: str) -> str:
    """128-bit hex content key of ``text`` (callers pass normalised text)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def key_bucket(key: str, n: int) -> int:
    """One of ``n`` buckets for a hex key, by its first 32 bits: a key range, so bucket order
    follows key order."""
    return int(key[:8], 16) * n >> 32


def hash_bucket(name: str, n: int) -> int:
    """One of ``n`` buckets for ``name``, by its ``text_key``: the same on every machine."""
    return key_bucket(text_key(name), n)


def derive_id(task: str, query: str, positives: list[str]) -> str:
    """A stable id from the content, for rows that carry none."""
    h = hashlib.sha256("\x1f".join([task, query, *positives]).encode("utf-8")).hexdigest()
    return f"{task}-{h[:16]}"


def stable_seed(seed: int, *parts: str) -> int:
    """A 64-bit seed from the global seed and parts (e.g. an example id): order-independent RNG."""
    h = hashlib.sha256("\x1f".join([str(seed), *parts]).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "little")
