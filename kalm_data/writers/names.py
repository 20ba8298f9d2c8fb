"""Folder names for tasks and stages: readable, and one folder per name.

Contract: ``folder_name`` is injective (two different names never share a folder) and keeps
every character a file system can hold, Unicode included (``日本語`` stays ``日本語``). It
percent-escapes only what cannot be a path component or would change its meaning: ``%`` itself,
``/`` and ``\\``, control characters, the characters Windows forbids (``:*?"<>|``), a leading
``.`` (``.``, ``..`` and hidden names) and a trailing ``.`` or space. A name whose escaped form
is over 200 UTF-8 bytes is cut and suffixed with a hash of the whole name.
"""

from __future__ import annotations

import hashlib

#: Characters escaped anywhere in a name.
_ESCAPED = set('%/\\:*?"<>|')
_MAX_BYTES = 200


def _escape(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8"))


def folder_name(name: str) -> str:
    """The folder that holds the task or stage ``name`` (see module docstring)."""
    if not name:
        return "%00"  # an empty name: no text can escape to this
    chars = [_escape(c) if c in _ESCAPED or ord(c) < 32 or ord(c) == 127 else c for c in name]
    if chars[0] == ".":
        chars[0] = _escape(".")
    if chars[-1] in (".", " "):
        chars[-1] = _escape(chars[-1])
    out = "".join(chars)
    if len(out.encode("utf-8")) > _MAX_BYTES:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
        cut = out.encode("utf-8")[: _MAX_BYTES - 17].decode("utf-8", errors="ignore")
        out = f"{cut}~{digest}"
    return out
