"""Reject command-line leftovers that are not Beam pipeline options.

``kalm-data curate`` parses its own flags with ``parse_known_args`` and hands the rest to Beam.
Beam's ``PipelineOptions`` only logs "Discarding unparseable args" for anything it does not
know, so a typo such as ``--num-negativs 3`` would run silently with the default.
:func:`check_beam_args` parses the leftovers the way Beam does (one parser holding the
arguments of every registered ``PipelineOptions`` subclass) and raises on whatever is left.

Beam is imported inside the function only, so importing this module stays cheap (``--help``).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import re
from collections.abc import Iterable, Iterator

__all__ = ["InvalidBeamOptionError", "UnknownFlagError", "beam_help_epilog", "check_beam_args"]

# argparse's own test for "this dash-led token is a negative number, i.e. a value".
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")
_SUGGEST_CUTOFF = 0.6


class UnknownFlagError(ValueError):
    """Some arguments are neither the command's own flags nor Beam pipeline options.

    ``unknown`` holds the offending flag names (without ``=value``) and stray positional
    values, in command-line order; the message names every one of them, e.g.
    ``unrecognized argument --num-negativs (did you mean --num-negatives?)``.
    """

    def __init__(self, message: str, unknown: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.unknown: tuple[str, ...] = tuple(unknown)


class InvalidBeamOptionError(ValueError):
    """A known Beam option is malformed (missing or ill-typed value, conflicting flags).

    The message is argparse's, e.g. ``argument --direct_num_workers: invalid int value: 'x'``.
    """


def _option_classes(root: type) -> Iterator[type]:
    """Every subclass of ``root``, recursively, each once, defining its own arguments.

    Classes that merely inherit ``_add_argparse_args`` are skipped: calling it again would
    register their parent's flags a second time.
    """
    seen: set[type] = set()
    queue = list(root.__subclasses__())
    while queue:
        cls = queue.pop(0)
        if cls in seen:
            continue
        seen.add(cls)
        queue.extend(cls.__subclasses__())
        if "_add_argparse_args" in vars(cls):
            yield cls


def _beam_parser() -> argparse.ArgumentParser:
    """A parser that knows every registered Beam pipeline option and never exits."""
    from apache_beam.options import pipeline_options

    # Registers DaskOptions (--dask_client_address, ...); dask is an optional extra.
    with contextlib.suppress(ImportError):
        import apache_beam.runners.dask.dask_runner  # noqa: F401

    # Beam's parser class provides add_value_provider_argument, which the option classes call.
    class _Parser(pipeline_options._BeamArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            # Like Beam: an ambiguous prefix is left over as unknown rather than fatal.
            if message.startswith("ambiguous option: "):
                return
            raise InvalidBeamOptionError(message)

    parser = _Parser(
        prog="beam pipeline options",
        add_help=False,  # -h/--help belong to the command, not to this check
        allow_abbrev=False,  # as Beam: --run is not --runner
        conflict_handler="resolve",  # a user options class may redeclare a flag
    )
    for cls in _option_classes(pipeline_options.PipelineOptions):
        cls._add_argparse_args(parser)
    return parser


def _closest(name: str, candidates: list[str]) -> str | None:
    """The candidate most similar to ``name``, or None when none is close.

    Similarity is difflib's ratio of the names without leading dashes (the shared ``--`` would
    make everything look alike), at least 0.6; the earlier candidate wins a tie.
    """
    bare = name.lstrip("-")
    scored = [
        (difflib.SequenceMatcher(None, bare, cand.lstrip("-")).ratio(), -i, cand)
        for i, cand in enumerate(candidates)
        if cand != name
    ]
    best = max(scored, default=None)
    return best[2] if best and best[0] >= _SUGGEST_CUTOFF else None


def _problems(leftovers: list[str]) -> Iterator[tuple[str, bool]]:
    """(token, is_flag) for each offending leftover.

    A value right after an unknown ``--flag`` (no ``=``) is taken as that flag's value;
    other bare values, ``--`` and everything after it are stray positionals.
    """
    expects_value = False
    for i, token in enumerate(leftovers):
        if token == "--":
            yield from ((t, False) for t in leftovers[i:])
            return
        if token.startswith("-") and len(token) > 1 and not _NEGATIVE_NUMBER.match(token):
            name, has_value, _ = token.partition("=")
            expects_value = not has_value
            yield name, True
        elif expects_value:
            expects_value = False
        else:
            yield token, False


def check_beam_args(args: list[str], own_flags: Iterable[str]) -> list[str]:
    """Return ``args`` unchanged when every one is a Beam pipeline option.

    Known means declared by any registered ``PipelineOptions`` subclass (``--runner``,
    ``--direct_num_workers``, ``--temp_location``, ``--project``, ``--dask_client_address``
    when dask is installed, ...) in any spelling Beam accepts: ``--flag=value``,
    ``--flag value``, bare boolean flags, repeated list flags. Option classes defined by
    imported user code count as well.

    Raises:
        UnknownFlagError: some arguments are unknown flags or stray values. The message names
            all of them, each unknown flag with the closest of ``own_flags`` (the command's own
            flags, e.g. ``"--num-negatives"``; preferred on ties) and Beam's flags.
        InvalidBeamOptionError: a known Beam option is malformed (Beam would exit on it too).
    """
    if not args:
        return args
    parser = _beam_parser()
    _, leftovers = parser.parse_known_args(args)
    if not leftovers:
        return args

    # argparse keeps every registered option string (long and short forms) in this mapping.
    candidates = [*own_flags, *parser._option_string_actions]
    phrases, unknown = [], []
    for token, is_flag in _problems(leftovers):
        unknown.append(token)
        if not is_flag:
            phrases.append(f"unexpected argument {token!r}")
            continue
        hint = _closest(token, candidates)
        suffix = f" (did you mean {hint}?)" if hint else ""
        phrases.append(f"unrecognized argument {token}{suffix}")
    raise UnknownFlagError("; ".join(phrases), unknown)


def beam_help_epilog() -> str:
    """Epilog for ``kalm-data curate --help``: how Beam options pass through. No Beam import."""
    return (
        "Beam pipeline options are passed to Apache Beam as-is; any other unknown flag is an "
        "error. Examples:\n"
        "  --runner apache_beam.runners.dask.dask_runner.DaskRunner "
        "[--dask_client_address HOST:PORT]\n"
        "  --direct_num_workers 2 --direct_running_mode multi_processing\n"
        "  --runner DataflowRunner --project P --region R --temp_location gs://BUCKET/tmp\n"
        "Runners and their options: https://beam.apache.org/documentation/runners/"
    )
