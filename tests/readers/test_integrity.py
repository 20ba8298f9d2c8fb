"""The one-pass scan: sha256 of the stored bytes, and a decompression check that accepts exactly
what the stdlib readers (``gzip``/``bz2``/``lzma``, as fsspec opens them) accept."""

from __future__ import annotations

import bz2
import gzip
import lzma
import tracemalloc

import pytest

from kalm_data.readers import integrity
from kalm_data.readers.common import sha256_file
from kalm_data.readers.integrity import CorruptFile, scan

from realdata import PAIRS

OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
COMPRESS = {"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}


def _stdlib_reads(path, compression: str) -> bool:
    try:
        with OPENERS[compression](path, "rb") as f:
            while f.read(1 << 16):
                pass
        return True
    except (OSError, EOFError, lzma.LZMAError):
        return False


def _variants(compression: str, text: bytes) -> dict[str, bytes]:
    c = COMPRESS[compression]
    whole = c(text)
    flipped = bytearray(whole)
    flipped[len(whole) // 2] ^= 0xFF
    return {
        "whole": whole,
        "two_streams": c(text[:1000]) + c(text[1000:]),
        "zero_padding": whole + b"\0" * 7,
        "trailing_junk": whole + b"trailing junk bytes",
        "cut_in_half": whole[: len(whole) // 2],
        "last_byte_cut": whole[:-1],
        "flipped_byte": bytes(flipped),
        "not_compressed": text,
        "empty": b"",
    }


@pytest.mark.parametrize("chunk", [7, 1 << 20])
@pytest.mark.parametrize("compression", ["gzip", "bz2", "xz"])
def test_scan_agrees_with_the_stdlib_readers(tmp_path, monkeypatch, compression, chunk):
    monkeypatch.setattr(integrity, "CHUNK", chunk)  # 7: every stream boundary mid-chunk
    text = gzip.decompress(PAIRS.read_bytes())[:20_000]
    verdicts = set()
    for name, data in _variants(compression, text).items():
        path = tmp_path / f"{name}.{compression}"
        path.write_bytes(data)
        expected = _stdlib_reads(path, compression)
        try:
            digest = scan(str(path), compression)
        except CorruptFile as e:
            assert not expected, f"{name}: scan says {e}, the stdlib reads it"
            assert str(e).startswith(f"truncated or corrupt {compression} file: ")
        else:
            assert expected, f"{name}: scan accepts it, the stdlib does not"
            assert digest == sha256_file(str(path))
        verdicts.add(expected)
    assert verdicts == {True, False}


def test_scan_hashes_the_stored_bytes_and_holds_little_output(tmp_path):
    data = gzip.compress(b"\0" * 200_000_000, compresslevel=9)  # ~200 KB -> 200 MB
    (tmp_path / "big.gz").write_bytes(data)
    tracemalloc.start()
    try:
        digest = scan(str(tmp_path / "big.gz"), "gzip")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digest == sha256_file(str(tmp_path / "big.gz"))
    assert peak < 20_000_000  # output is discarded chunk by chunk, never held whole
    assert scan(str(PAIRS), None) == sha256_file(str(PAIRS))
    assert scan(str(PAIRS), "zstd") == sha256_file(str(PAIRS))  # not checked: hashed only
