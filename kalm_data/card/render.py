"""The card's README.md: YAML front matter, then the body, from the manifest and the statistics.

Contract: ``render_readme(card)`` is pure (no I/O) and returns the whole file. Sections, in
order: title and summary, Loading, Tasks, How it was made (settings, Sources, Funnel, Timings
when the manifest has them, Mining counters), Per-task statistics (hardness, charts, examples),
Reproduce. Charts are linked by relative path (``task_section.chart_path``). Paths are shown by
``command.public_name`` (as the manifest records them when relative, else by file name), never
absolute.
"""

from __future__ import annotations

from dataclasses import dataclass

from kalm_data.card.command import curate_command, public_name
from kalm_data.card.front_matter import config_name, front_matter, render_front_matter
from kalm_data.card.funnel import funnel_steps
from kalm_data.card.markdown import code, escape, link_path, number, table
from kalm_data.card.stats import TaskStats
from kalm_data.card.task_section import chart_path, overview_table, task_section

FINGERPRINT_CHARS = 12


@dataclass(frozen=True)
class Card:
    """Everything the README is made of."""

    manifest: dict
    stats: dict[str, TaskStats]  # by task, in the manifest's order
    languages: dict[str, str]  # task -> language code
    license: str
    pretty_name: str

    @property
    def settings(self) -> dict:
        return self.manifest.get("settings") or {}

    @property
    def folders(self) -> dict[str, str]:
        return {task: self.manifest["tasks"][task]["folder"] for task in self.stats}

    @property
    def configs(self) -> dict[str, str]:
        return {task: config_name(task, folder) for task, folder in self.folders.items()}


def teacher_name(card: Card) -> str:
    """The teacher as the card shows it: its hub id or folder name, never a local path. Older
    manifests record the default teacher as None (settings) and by its local folder."""
    from kalm_data.published import DEFAULT_TEACHER_ID

    given = card.settings.get("teacher")
    return public_name(str(given)) if given else DEFAULT_TEACHER_ID


def _plural(n: int, word: str) -> str:
    return f"{number(n)} {word}" + ("" if n == 1 else "s")


def _intro(card: Card) -> list[str]:
    counts = card.manifest.get("counts", {})
    examples = sum(s.examples for s in card.stats.values())
    created = card.manifest.get("created", "")[:10]
    version = card.manifest.get("kalm_data_version", "?")
    kept, read = int(counts.get("rows_kept", 0)), int(counts.get("rows_read", 0))
    return [
        f"# {escape(card.pretty_name)}",
        "",
        f"{_plural(examples, 'training example')} in {_plural(len(card.stats), 'task')} for "
        f"contrastive training of text-embedding models, curated with kalm-data {escape(version)}"
        f"{f' on {created}' if created else ''}. Each row is a query, its positive passage(s) "
        f"and hard negatives mined with the teacher {escape(teacher_name(card))}, with the "
        f"teacher's scores and ranks. {number(kept)} of {_plural(read, 'input row')} were kept "
        "(see the funnel below).",
        "",
    ]


_FIELDS = (
    ("query", "the query text"),
    ("positives", "its positive passages"),
    ("negatives", "hard negatives, in rank order"),
    ("positive_scores, negative_scores", "the teacher's cosine similarity of each to the query"),
    ("negative_ranks", "each negative's 0-based rank in the task's pool (-1: given, not mined)"),
    ("positive_rank", "the best positive's rank in that pool (0 = nothing outranks it)"),
    ("query_rank", "the query's rank among the task's queries, searched with the positive"),
    ("instruction, task, task_type", "for instruction-tuned training"),
    ("id, source_rows, source_ids", "where the example came from in its input file"),
)


def _loading(card: Card) -> list[str]:
    first = next(iter(card.configs.values()), "TASK")
    rows = [[code(name), meaning] for name, meaning in _FIELDS]
    return [
        "## Loading",
        "",
        "One config per task, each with a single `train` split:",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f"rows = load_dataset('path/or/hub-id', {first!r}, split='train')",
        "```",
        "",
        *table(["columns", "meaning"], rows),
        "",
    ]


def _settings_table(card: Card) -> list[str]:
    s = card.settings
    rule = s.get("filter_rule")
    rows = [
        ("teacher", teacher_name(card), "embeds every text; its scores rank and filter"),
        ("precision", s.get("precision"), "teacher precision"),
        ("index", s.get("index"), "nearest-neighbour search (flat: exact inner product)"),
        ("num_negatives", s.get("num_negatives"), "negatives per example (fewer if too few pass)"),
        ("window_start, window_end", _window(s), "ranks the negatives are drawn from, at random"),
        ("margin", s.get("margin"), "skip candidates above margin × the positive's score"),
        ("near_duplicate", s.get("near_duplicate"), "skip candidates this close to a positive"),
        ("filter_rule", rule, _RULES.get(rule, "")),
        ("filter_k", s.get("filter_k"), "the filter's rank k"),
    ]
    if rule == "mutual":
        rows += [
            ("filter_margin", s.get("filter_margin"), "mutual: slack below the k-th score"),
            ("filter_query_k", s.get("filter_query_k"), "mutual: the reverse search's rank"),
        ]
    rows.append(("seed", s.get("seed"), "seeds the draw of negatives"))
    cells = [[code(n), escape(str(v)), m] for n, v, m in rows if v is not None]
    return table(["setting", "value", "meaning"], cells)


_RULES = {
    "kalm": "keep an example when its best positive ranks < k among the task's pool (KaLM)",
    "mutual": "keep when the best positive scores at least the k-th candidate's score minus "
    "filter_margin, or when the query ranks < filter_query_k among the task's queries "
    "searched with the positive",
    "none": "no filter",
}


def _window(settings: dict) -> str | None:
    start, end = settings.get("window_start"), settings.get("window_end")
    return None if start is None or end is None else f"{start}–{end - 1}"


def _how_made(card: Card) -> list[str]:
    teacher = card.manifest.get("teacher") or {}
    fingerprint = teacher.get("fingerprint")
    return [
        "## How it was made",
        "",
        "`kalm-data curate` read the (query, positive) pairs below, rejected invalid and "
        "duplicate rows, merged rows with the same query, embedded every text with the teacher, "
        "searched each task's pool (its positives, plus any corpus) for every query, drew hard "
        "negatives from a window of ranks and dropped examples whose positive ranks "
        "inconsistently (a likely false pair).",
        "",
        *_settings_table(card),
        "",
        *([f"Teacher fingerprint: {code(fingerprint)}.", ""] if fingerprint else []),
        *_versions(card),
    ]


#: The versions the card names (the manifest records more), and how it spells them.
_VERSIONS = {
    "python": "Python",
    "torch": "torch",
    "transformers": "transformers",
    "sentence-transformers": "sentence-transformers",
    "faiss-cpu": "faiss-cpu",
    "faiss-gpu-cu12": "faiss-gpu-cu12",
}


def _versions(card: Card) -> list[str]:
    versions = card.manifest.get("versions") or {}
    named = [f"{_VERSIONS[n]} {escape(versions[n])}" for n in _VERSIONS if n in versions]
    return [f"Built with {', '.join(named)}.", ""] if named else []


def _sources(card: Card) -> list[str]:
    n_inputs = len(card.settings.get("inputs") or [])
    rows = [
        [
            code(public_name(entry.get("path", ""))),
            "input" if i < n_inputs or not n_inputs else "corpus",
            escape(entry.get("task") or ""),
            code(str(entry.get("fingerprint", ""))[:FINGERPRINT_CHARS]),
        ]
        for i, entry in enumerate(card.manifest.get("inputs") or [])
    ]
    return [
        "### Sources",
        "",
        *table(["file", "role", "task", "sha256 (prefix)"], rows),
        "",
    ]


def _funnel(card: Card) -> list[str]:
    counts = card.manifest.get("counts", {})
    read = int(counts.get("rows_read", 0))
    rows = []
    for step in funnel_steps(counts):
        label = escape(step.label)
        if step.kind == "rejected":
            label = f"rejected at {escape(step.stage)}: {code(step.reason)}"
        elif step.kind == "kept":
            label = f"kept ({_plural(int(counts.get('examples_kept', 0)), 'example')})"
        share = f"{100 * step.rows / read:.1f}%" if read else "—"
        rows.append([label, number(step.rows), share])
    lines = ["### Funnel", "", *table(["step", "rows", "of rows read"], rows, right={1, 2}), ""]
    if not counts.get("balanced", True):
        lines += ["**Unbalanced: rows read ≠ rows kept + rows rejected.**", ""]
    corpus = counts.get("corpus_rows_rejected") or {}
    if corpus:
        parts = ", ".join(f"{escape(r)}: {number(n)}" for r, n in sorted(corpus.items()))
        lines += [f"Corpus rows rejected (not in the funnel): {parts}.", ""]
    return [*lines, f"![funnel]({link_path(chart_path('funnel'))})", ""]


def _timings(card: Card) -> list[str]:
    timings = card.manifest.get("timings") or {}
    if not timings:
        return []
    total = timings.get("total") or sum(timings.values())
    rows = [
        [escape(stage), number(float(seconds), 2), f"{100 * seconds / total:.0f}%" if total else ""]
        for stage, seconds in timings.items()
        if stage != "total"
    ]
    rows.append(["**total**", f"**{number(float(total), 2)}**", ""])
    return ["### Timings", "", *table(["stage", "seconds", "of total"], rows, right={1, 2}), ""]


def _mining_counters(card: Card) -> list[str]:
    counters = card.manifest.get("mining") or {}
    if not counters:
        return []
    rows = [[escape(name.replace("_", " ")), number(int(v))] for name, v in counters.items()]
    return ["### Mining counters", "", *table(["counter", "value"], rows, right={1}), ""]


def _per_task(card: Card) -> list[str]:
    lines = [
        "## Per-task statistics",
        "",
        "Scores are the teacher's cosine similarities to the query; the gap is the best "
        "positive's score minus the best negative's (examples with negatives); the rank is "
        "`positive_rank`. A gap near zero or below means hard or false negatives.",
        "",
    ]
    for task, s in card.stats.items():
        lines += task_section(task, card.configs[task], card.folders[task], s)
    return lines


def _reproduce(card: Card) -> list[str]:
    n_inputs = len(card.settings.get("inputs") or [])
    tasks = [e.get("task") for e in (card.manifest.get("inputs") or [])[:n_inputs]]
    return [
        "## Reproduce",
        "",
        "Inputs are named as the manifest records them (relative to where curate ran, or by "
        "file name): point `--input` at your copies (the Sources table gives their sha256), "
        "then write this card:",
        "",
        "```bash",
        curate_command(card.settings, tasks),
        "kalm-data card OUT",
        "```",
        "",
    ]


def body(card: Card) -> list[str]:
    """The lines of the README's body (see module docstring)."""
    tasks = card.manifest.get("tasks") or {}
    overview = overview_table(card.stats, tasks, card.configs, card.languages)
    return [
        *_intro(card),
        *_loading(card),
        "## Tasks",
        "",
        *(overview if card.stats else ["No examples were kept."]),
        "",
        *_how_made(card),
        *_sources(card),
        *_funnel(card),
        *_timings(card),
        *_mining_counters(card),
        *_per_task(card),
        *_reproduce(card),
    ]


def render_readme(card: Card) -> str:
    """The whole README.md: front matter and body."""
    meta = front_matter(
        pretty_name=card.pretty_name,
        license=card.license,
        languages=list(card.languages.values()) or ["en"],
        rows=sum(s.examples for s in card.stats.values()),
        tasks=card.folders,
    )
    return render_front_matter(meta) + "\n" + "\n".join(body(card)).rstrip() + "\n"
