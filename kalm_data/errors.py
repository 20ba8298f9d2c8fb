"""Errors a user should see as one clear line, not a traceback.

Contract: the command line prints these as ``kalm-data <command>: error: <message>``, with no
traceback, and exits with ``exit_code``. Each message is complete on one line and names what is
wrong (the file, row, field or flag) and, where there is one, the fix. Code raises them only for
the user's mistakes and for failed runs; a bug stays an ordinary exception with its traceback.
"""

from __future__ import annotations


class KalmDataError(Exception):
    """Base of the errors shown as one line."""

    exit_code = 1


class UsageError(KalmDataError):
    """A problem with what the user asked for (a flag, a setting, an input, the output folder),
    found before anything was written."""

    exit_code = 2


class RunFailed(KalmDataError):
    """The pipeline failed while running; the message is the root cause, and the previous
    output is untouched."""


class Interrupted(KalmDataError):
    """The run was stopped by SIGINT or SIGTERM; the message says what was kept."""

    exit_code = 130


def validation_message(error) -> str:
    """A pydantic ``ValidationError`` as one line: ``setting: problem (got value)``."""
    parts = []
    for e in error.errors():
        where = ".".join(str(x) for x in e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        got = f" (got {e['input']!r})" if "input" in e and not isinstance(e["input"], dict) else ""
        parts.append(f"{where}: {message}{got}" if where else message)
    return "invalid settings: " + "; ".join(parts)


def root_cause(error: BaseException) -> str:
    """The line that says what went wrong in a (possibly wrapped, multi-line) exception."""
    import re

    while error.__cause__ is not None and str(error.__cause__):
        error = error.__cause__
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit):", line)]
    line = named[-1] if named else (lines[0] if lines else type(error).__name__)
    stage = re.findall(r"\[while running '([^']+)'\]", str(error))
    return f"{line} (in {stage[-1]})" if stage else line
