"""The card's per-task parts: the overview table, and each task's hardness, charts and examples.

Contract: pure text from ``TaskStats``; charts are linked by ``chart_path`` (relative to the
card), which is also where ``write_card`` writes them. Texts from the data are truncated to
``EXAMPLE_CHARS`` and escaped (``kalm_data.card.markdown.escape``); no path from the data
(``source_file``, ``teacher``) is shown.
"""

from __future__ import annotations

from kalm_data.card.markdown import escape, link_path, number, table, truncate
from kalm_data.card.stats import TaskStats, describe

EXAMPLE_CHARS = 200
#: The per-task charts, in the order shown: (kind, caption).
TASK_CHARTS = (
    ("scores", "positive vs negative scores"),
    ("ranks", "positive rank"),
    ("lengths", "text lengths"),
)
#: Rows of the hardness table (the statistics sentence-transformers' mine_hard_negatives prints).
HARDNESS_ROWS = ("count", "mean", "std", "min", "25%", "50%", "75%", "max")


def chart_path(kind: str, folder: str | None = None) -> str:
    """Where a chart lives, relative to the card: ``card/<kind>[-<task folder>].png``."""
    return f"card/{kind}.png" if folder is None else f"card/{kind}-{folder}.png"


def _chars(values) -> str:
    d = describe(values)
    return " / ".join(number(d[k], 0) for k in ("mean", "50%", "95%"))


def _mean(values) -> str:
    return number(describe(values)["mean"], 2)


def overview_table(
    stats: dict[str, TaskStats], tasks: dict[str, dict], configs: dict[str, str], languages
) -> list[str]:
    """One row per task: config, language, input rows, examples, positives and negatives per
    example, query and positive lengths (mean / p50 / p95 characters)."""
    header = [
        "config",
        "language",
        "input rows",
        "examples",
        "positives / example",
        "negatives / example",
        "query chars (mean / p50 / p95)",
        "positive chars (mean / p50 / p95)",
    ]
    rows = []
    for task, s in stats.items():
        rows.append(
            [
                escape(configs[task]),
                languages[task],
                number(int(tasks[task].get("rows", 0))),
                number(s.examples),
                _mean(s.positives_per_example),
                _mean(s.negatives_per_example),
                _chars(s.query_chars),
                _chars(s.positive_chars),
            ]
        )
    return table(header, rows, right=set(range(2, 8)))


def hardness_table(s: TaskStats) -> list[str]:
    """count, mean, std, min, quartiles and max of the scores, the gap and the rank."""
    columns = (
        (describe(s.positive_scores), 4),
        (describe(s.negative_scores), 4),
        (describe(s.gaps), 4),
        (describe(s.positive_ranks), 1),
    )
    rows = [
        [key, *(number(d[key], 0 if key == "count" else digits) for d, digits in columns)]
        for key in HARDNESS_ROWS
    ]
    header = ["", "positive score", "negative score", "gap (best pos − best neg)", "positive rank"]
    return table(header, rows, right={1, 2, 3, 4})


def _example(i: int, row: dict) -> list[str]:
    lines = [f"**Example {i}** (id {escape(row['id'])})", ""]
    lines.append(f"- **query:** {escape(truncate(row['query'], EXAMPLE_CHARS))}")
    if row["positives"]:
        score = number(row["positive_scores"][0], 3) if row["positive_scores"] else "—"
        text = escape(truncate(row["positives"][0], EXAMPLE_CHARS))
        lines.append(f"- **positive** (score {score}): {text}")
    if row["negatives"]:
        scores = row["negative_scores"]
        j = max(range(len(scores)), key=scores.__getitem__) if scores else 0
        score = number(scores[j], 3) if scores else "—"
        rank = row["negative_ranks"][j] if j < len(row["negative_ranks"]) else -1
        where = "given" if rank < 0 else f"rank {rank}"
        text = escape(truncate(row["negatives"][j], EXAMPLE_CHARS))
        n = len(row["negatives"])
        label = "negative" if n == 1 else f"hardest of {n} negatives"
        lines.append(f"- **{label}** (score {score}, {where}): {text}")
    return [*lines, ""]


def task_section(task: str, config: str, folder: str, s: TaskStats) -> list[str]:
    """``### <config>``: the hardness table, the task's charts and its sample rows."""
    lines = [f"### {escape(config)}", ""]
    if config != task:
        lines += [f"Task name: {escape(task)}.", ""]
    lines += [*hardness_table(s), ""]
    for kind, caption in TASK_CHARTS:
        alt = escape(f"{config}: {caption}")
        lines.append(f"![{alt}]({link_path(chart_path(kind, folder))})")
    lines += ["", "#### Examples", ""]
    for i, row in enumerate(s.samples, start=1):
        lines += _example(i, row)
    return lines
