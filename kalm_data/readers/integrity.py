"""One pass over an input's stored bytes: its sha256 and, if compressed, a full decompression.

Contract: ``scan(path, compression)`` reads the bytes stored at ``path`` once, in 1 MiB chunks,
and returns their sha256 hex: the same value as ``common.sha256_file(path)``. When
``compression`` is one of ``CHECKED`` (names as ``fsspec.utils.infer_compression`` gives them),
every chunk also goes through the matching stdlib decompressor (output discarded, at most
``CHUNK`` bytes of it held at a time), and a stream that is corrupt or ends early raises
``CorruptFile``. "Intact" means what the readers (``gzip``/``bz2``/``lzma`` through fsspec)
accept: concatenated streams; zero padding between gzip members; an empty ``.gz``; bytes after a
complete bz2/xz stream that do not start another one (those modules ignore them). Other
compressions (``zstd``, ``zip``) are hashed only.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import zlib
from collections.abc import Callable
from typing import Any

from kalm_data.readers.common import open_input

#: Bytes read per chunk, and the most decompressed output produced per call.
CHUNK = 1 << 20

#: Compression name (``fsspec.utils.infer_compression``) -> decompressor factory.
CHECKED: dict[str, Callable[[], Any]] = {
    "gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "bz2": bz2.BZ2Decompressor,
    "xz": lzma.LZMADecompressor,
    "lzma": lzma.LZMADecompressor,
}


#: What the decompressors raise on bad data.
_ERRORS = (zlib.error, OSError, EOFError, lzma.LZMAError)


class CorruptFile(ValueError):
    """The compressed stream is corrupt or truncated; the message says which compression."""


class StreamCheck:
    """Decompresses bytes fed in any chunking, one decompressor per concatenated stream."""

    def __init__(self, compression: str):
        self.compression = compression
        self._new = CHECKED[compression]
        self._stream: Any = None  # None: between streams (or before the first)
        self._streams = 0  # streams started so far
        self._ignore_rest = False  # trailing non-stream bytes, ignored as the readers do

    def feed(self, data: bytes) -> None:
        """Decompress ``data``; raise ``CorruptFile`` at the first error."""
        while data and not self._ignore_rest:
            trailing = False
            if self._stream is None:
                if self.compression == "gzip" and self._streams:
                    data = data.lstrip(b"\0")  # zero padding after a member
                    if not data:
                        return
                self._stream = self._new()
                self._streams += 1
                trailing = self._streams > 1 and self.compression != "gzip"
            try:
                data = self._decompress(data)
            except _ERRORS as e:
                if trailing:  # bytes after a complete bz2/xz stream that start no new one
                    self._stream, self._ignore_rest = None, True
                    return
                raise self._error(str(e)) from e

    def finish(self) -> None:
        """Raise ``CorruptFile`` unless the input ended at the end of a stream."""
        if self._stream is not None or (self._streams == 0 and self.compression != "gzip"):
            raise self._error("compressed data ends before the end-of-stream marker")

    def _decompress(self, data: bytes) -> bytes:
        """Feed ``data`` to the current stream; return the bytes after its end (if it ended)."""
        d = self._stream
        if self.compression == "gzip":
            while not d.eof:
                out = d.decompress(data, CHUNK)
                data = d.unconsumed_tail
                if not data and len(out) < CHUNK:  # all input used, no output pending
                    break
        else:
            d.decompress(data, CHUNK)
            while not d.eof and not d.needs_input:
                d.decompress(b"", CHUNK)
        if not d.eof:
            return b""
        self._stream = None
        return d.unused_data

    def _error(self, detail: str) -> CorruptFile:
        return CorruptFile(f"truncated or corrupt {self.compression} file: {detail}")


def scan(path: str, compression: str | None) -> str:
    """sha256 hex of the bytes at ``path``; with a ``CHECKED`` compression, also decompress them
    all and raise ``CorruptFile`` if the stream is corrupt or truncated."""
    digest = hashlib.sha256()
    check = StreamCheck(compression) if compression in CHECKED else None
    with open_input(path, compression=None) as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            if check is not None:
                check.feed(chunk)
    if check is not None:
        check.finish()
    return digest.hexdigest()
