"""Small Markdown helpers for the card: escaping data text, tables, numbers.

Contract: ``escape`` makes any text safe to show inline, after other text (in a paragraph, a
list item or a table cell) on the Hub and in common renderers: whitespace collapses to single
spaces, HTML is shown as text (entities), and the inline markup characters are backslash-escaped,
so data cannot add emphasis, code, links, images or table columns. Characters that are markup
only at the start of a line (``#``, ``-``, ``+``, ``1.``) are left alone: escaped text never
starts a line. ``table`` builds a pipe table from already-escaped cells.
"""

from __future__ import annotations

import math
import numbers
from urllib.parse import quote

# Inline markup in CommonMark ("\\`*_[]"; "!" and "(" only matter after "[" and "]"), GFM
# strikethrough ("~") and table cells ("|").
_MARKUP = set("\\`*_[]|~")


def escape(text: str) -> str:
    """``text`` as inline Markdown that shows exactly these characters (see module docstring)."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join("\\" + ch if ch in _MARKUP else ch for ch in text)


def truncate(text: str, limit: int = 200) -> str:
    """``text`` with whitespace collapsed, cut to ``limit`` characters at a word if it can be."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


def code(text: str) -> str:
    """``text`` as an inline code span (backticks inside are allowed)."""
    text = " ".join(str(text).split())
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def link_path(path: str) -> str:
    """A relative file path as a URL path (spaces, ``%`` and non-ASCII percent-encoded)."""
    return quote(path, safe="/")


def number(value: float | int | None, digits: int = 3) -> str:
    """An int with thousands separators, a float with ``digits`` decimals, None as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    """A pipe table; columns whose index is in ``right`` are right-aligned (numbers)."""
    rule = ["---:" if i in right else "---" for i in range(len(header))]
    return [f"| {' | '.join(cells)} |" for cells in (header, rule, *rows)]
