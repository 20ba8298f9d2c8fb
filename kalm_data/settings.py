"""Settings plumbing shared by every command: flags generated from a pydantic model, and YAML.

Contract: ``add_run_flags`` adds the flags every pipeline command has (``--output``,
``--overwrite``, ``--config``); ``add_model_flags`` adds one ``--field-name`` flag per model
field (not in ``skip``), each defaulting to None so that "not given" is distinguishable;
``read_yaml`` returns the mapping in a settings file. Precedence everywhere: model defaults <
YAML file < flags.
"""

from __future__ import annotations

import argparse
import typing
from pathlib import Path

from pydantic import BaseModel


def _flag_kwargs(annotation) -> dict:
    """argparse keyword arguments for one field's type."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return {"choices": typing.get_args(annotation), "type": str}
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if annotation is bool or args == [bool]:  # bool, or bool | None (None: decided at run time)
        return {"action": argparse.BooleanOptionalAction}
    if origin is list:
        return {"nargs": "*", "type": args[0], "metavar": args[0].__name__.upper()}
    return {"type": args[0] if args else annotation}


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """``--output DIR``, ``--overwrite`` and ``--config FILE.yaml``."""
    p.add_argument("--output", metavar="DIR", help="output folder (local or any fsspec URL)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier kalm-data output in --output (only the files it wrote)",
    )
    p.add_argument("--config", metavar="FILE.yaml", help="settings file; flags override it")


def add_model_flags(
    parser: argparse.ArgumentParser,
    model: type[BaseModel],
    skip: set[str] | frozenset = frozenset(),
) -> None:
    """One flag per field of ``model`` (see module docstring)."""
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        default = info.get_default(call_default_factory=True)
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            # argparse formats help with %: a literal one ("~30% slower") must be doubled
            help=f"{info.description or ''} (default: {default!r})".strip().replace("%", "%%"),
            **_flag_kwargs(info.annotation),
        )


def read_yaml(path: str | Path | None) -> dict:
    """The mapping in the YAML file at ``path`` ({} without a path)."""
    if not path:
        return {}
    import yaml

    from kalm_data.errors import UsageError

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise UsageError(f"--config {path}: cannot read: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise UsageError(f"--config {path}: not valid YAML: {' '.join(str(e).split())}") from e
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: the config must be a mapping of setting: value")
    return data
