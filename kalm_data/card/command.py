"""The ``kalm-data curate`` command that rebuilds an output, from its manifest's settings.

Contract: ``curate_command(settings)`` returns a shell command, one flag per line, that gives
each input its task and column mapping, and a flag only for the settings that differ from today's
``CurateConfig`` defaults (so it stays short and readable). Paths are shown by ``public_name``,
never absolute. Settings tied to one machine (``output``, ``cache_dir``, ``paths_root``) are left
out; the output folder is written ``OUT``.
"""

from __future__ import annotations

import os
import re
import shlex

#: Settings that are not flags of their own, or that only say where things live on one machine.
_NOT_FLAGS = {"inputs", "corpus", "output", "cache_dir", "paths_root"}


def public_name(path: str) -> str:
    """What a card may show of ``path``: a hub id or a plain relative path (as manifests record
    inputs by default) as it is; an absolute path, a URL, or a path out of its folder (``..``,
    ``~``) by its file name alone."""
    normal = path.replace("\\", "/")
    relative = not (
        "://" in normal
        or normal.startswith(("/", "~"))
        or re.match(r"^[A-Za-z]:", normal)
        or ".." in normal.split("/")
    )
    if relative and normal.strip("/"):
        return normal
    return os.path.basename(normal.rstrip("/")) or normal.strip("/")


def _map_flag(columns: dict) -> list[str]:
    if not columns:
        return []
    return ["--map " + shlex.quote(",".join(f"{f}={c}" for f, c in columns.items()))]


def input_flags(specs: list[dict], tasks: list[str] | None = None) -> list[str]:
    """``--input`` flags for ``specs`` (the settings' inputs); ``tasks``: each one's task.

    ``--task`` and ``--map`` apply to the group of inputs before them, so when inputs differ
    in either, each input gets its own ``--task`` (from ``tasks`` when it had none) and ``--map``;
    otherwise the inputs are listed alone, with one shared ``--map``.
    """
    names = [f"--input {shlex.quote(public_name(s['path']))}" for s in specs]
    columns = [s.get("columns") or {} for s in specs]
    alike = not any(s.get("task") for s in specs) and all(c == columns[0] for c in columns)
    if alike:
        return names + (_map_flag(columns[0]) if specs else [])
    flags = []
    for i, spec in enumerate(specs):
        task = spec.get("task") or (tasks[i] if tasks and i < len(tasks) else None)
        flags.append(names[i] + (f" --task {shlex.quote(task)}" if task else ""))
        flags.extend(_map_flag(columns[i]))
    return flags


def _value(value) -> str:
    if isinstance(value, list | tuple):
        return " ".join(shlex.quote(str(v)) for v in value)
    return shlex.quote(str(value))


def _setting_flag(name: str, value) -> str:
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"--no-{name.replace('_', '-')}"
    if name == "teacher":
        value = public_name(str(value))
    return f"{flag} {_value(value)}"


def changed_settings(settings: dict) -> dict:
    """The settings that are flags and differ from the ``CurateConfig`` defaults."""
    from kalm_data.curate.config import CurateConfig

    out = {}
    for name, info in CurateConfig.model_fields.items():
        if name in _NOT_FLAGS or name not in settings:
            continue
        default = info.get_default(call_default_factory=True)
        if settings[name] != default and not (name == "teacher" and _is_default_teacher(settings)):
            out[name] = settings[name]
    return out


def _is_default_teacher(settings: dict) -> bool:
    """Manifests record the default teacher (None in the config) by its hub id."""
    from kalm_data.published import DEFAULT_TEACHER_ID

    return settings.get("teacher") in (None, DEFAULT_TEACHER_ID)


def curate_command(settings: dict, tasks: list[str] | None = None) -> str:
    """The command line (see module docstring), lines joined with `` \\`` continuations.
    ``tasks``: the task of each input, as the manifest's ``inputs`` records them."""
    lines = ["kalm-data curate", *input_flags(settings.get("inputs") or [], tasks)]
    for spec in settings.get("corpus") or []:
        lines.append(f"--corpus {shlex.quote(public_name(spec['path']))}")
    lines.append("--output OUT")
    lines.extend(_setting_flag(n, v) for n, v in changed_settings(settings).items())
    return " \\\n  ".join(lines)
