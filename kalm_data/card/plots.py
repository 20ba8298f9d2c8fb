"""The card's charts as PNG bytes: the funnel, and per task lengths, scores and ranks.

Contract: each function returns the bytes of one PNG, 6 x 3.5 inches at 100 dpi (the funnel
grows taller past eight bars), and writes nothing. matplotlib is imported when a chart is drawn;
figures are drawn on the Agg canvas without pyplot (no global state, no display), and the PNG
carries no software version, so the same numbers give the same bytes. An empty array draws a
note instead of a histogram.
"""

from __future__ import annotations

import functools
import io
import warnings

import numpy as np

from kalm_data.card.funnel import Step

WIDTH, HEIGHT, DPI = 6.0, 3.5, 100
#: Lengths spanning more than this ratio are drawn on a log axis.
LOG_SPAN = 30
COLORS = {
    "read": "#636363",
    "rejected": "#de2d26",
    "kept": "#31a354",
    "query": "#756bb1",
    "positive": "#3182bd",
    "negative": "#e6550d",
}


#: Fonts with CJK glyphs, tried after the default for task names in titles (if installed).
_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "Droid Sans Fallback")


@functools.cache
def _title_fonts() -> tuple[str, ...]:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return ("sans-serif", *(f for f in _CJK_FONTS if f in installed))


def _title(ax, text: str) -> None:
    ax.set_title(text, fontsize=10, fontfamily=list(_title_fonts()))


def _figure(height: float = HEIGHT):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # A task name in a script no installed font has draws as boxes: cosmetic, not an error.
        warnings.filterwarnings(
            "ignore", message="Glyph .* missing from font", category=UserWarning
        )
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _integer_ticks(*axes) -> None:
    from matplotlib.ticker import MaxNLocator

    for axis in axes:
        axis.set_major_locator(MaxNLocator(integer=True))


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{value:,.0f}")


def _no_labels():
    from matplotlib.ticker import NullFormatter

    return NullFormatter()


def _empty(ax, note: str) -> None:
    ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, color="gray")


def funnel_chart(steps: list[Step]) -> bytes:
    """Horizontal bars, top to bottom: read, each rejection reason, kept; each bar labelled."""
    figure = _figure(max(HEIGHT, 1.2 + 0.32 * len(steps)))
    ax = figure.subplots()
    y = np.arange(len(steps))
    rows = [s.rows for s in steps]
    ax.barh(y, rows, color=[COLORS[s.kind] for s in steps])
    ax.set_yticks(y, [s.label for s in steps], fontsize=8)
    ax.invert_yaxis()
    top = max(rows) if rows and max(rows) > 0 else 1
    for i, n in enumerate(rows):
        ax.text(n + top * 0.01, i, f"{n:,}", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.15)
    ax.xaxis.set_major_formatter(_thousands())
    ax.set_xlabel("input rows")
    _title(ax, "Funnel: rows read, rejected, kept")
    return _png(figure)


def length_chart(task: str, query_chars: np.ndarray, positive_chars: np.ndarray) -> bytes:
    """Histograms of query and positive lengths in characters; log-spaced bins when the lengths
    span more than ``LOG_SPAN`` x (short queries beside long passages)."""
    figure = _figure()
    ax = figure.subplots()
    both = np.concatenate([query_chars, positive_chars]).astype(np.float64)
    if both.size == 0:
        _empty(ax, "no texts")
    else:
        low, high = max(1.0, both.min()), max(2.0, both.max())
        log = high / low > LOG_SPAN
        bins = np.geomspace(low, high * 1.01, 40) if log else np.linspace(low, high + 1, 40)
        for name, values in (("query", query_chars), ("positive", positive_chars)):
            ax.hist(
                np.clip(values, low, None),
                bins=bins,
                alpha=0.6,
                color=COLORS[name],
                label=f"{name} ({len(values):,})",
            )
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(_no_labels())
        ax.xaxis.set_major_formatter(_thousands())
        ax.legend(fontsize=8)
    _integer_ticks(ax.yaxis)
    ax.set_xlabel("length (characters)")
    ax.set_ylabel("texts")
    _title(ax, f"{task}: text lengths")
    return _png(figure)


def score_chart(task: str, positive_scores: np.ndarray, negative_scores: np.ndarray) -> bytes:
    """Density histograms of the teacher's positive and negative scores on shared bins."""
    figure = _figure()
    ax = figure.subplots()
    both = np.concatenate([positive_scores, negative_scores]).astype(np.float64)
    if both.size == 0:
        _empty(ax, "no scores")
    else:
        bins = np.linspace(both.min(), max(both.max(), both.min() + 1e-6), 41)
        for name, values in (("positive", positive_scores), ("negative", negative_scores)):
            if len(values):
                ax.hist(
                    values,
                    bins=bins,
                    density=True,
                    alpha=0.6,
                    color=COLORS[name],
                    label=f"{name} ({len(values):,})",
                )
        ax.legend(fontsize=8)
    ax.set_xlabel("teacher cosine similarity to the query")
    ax.set_ylabel("density")
    _title(ax, f"{task}: positive vs negative scores")
    return _png(figure)


def rank_chart(task: str, ranks: np.ndarray, filter_k: int | None = None) -> bytes:
    """Histogram of ``positive_rank`` (one bar per rank up to 60, else 60 bins); a dashed line
    at the filter's rank k when given."""
    figure = _figure()
    ax = figure.subplots()
    if len(ranks) == 0:
        _empty(ax, "no examples")
    else:
        top = int(np.max(ranks))
        bins = np.arange(top + 2) - 0.5 if top < 60 else 60
        ax.hist(ranks, bins=bins, color=COLORS["positive"], edgecolor="white", linewidth=0.5)
        if filter_k is not None:
            ax.axvline(filter_k - 0.5, color="gray", linestyle="--", label=f"filter k = {filter_k}")
            ax.legend(fontsize=8)
    _integer_ticks(ax.xaxis, ax.yaxis)
    ax.set_xlabel("rank of the best positive (0 = first)")
    ax.set_ylabel("examples")
    _title(ax, f"{task}: positive rank")
    return _png(figure)
