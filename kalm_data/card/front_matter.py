"""The YAML front matter of the card: what the Hub shows and what ``datasets.load_dataset`` reads.

Contract: ``front_matter(...)`` returns the metadata as a dict and ``render_front_matter`` the
``---`` block. Each task is one config (``load_dataset(DIR, config, split="train")``) whose
``data_files`` is the glob of its folder, ``data/<folder>/part-*.parquet`` (glob characters in
the folder name escaped). The config name is the task name, or its folder name when the task
name has characters ``datasets`` refuses in a config name (``<>:/\\|?*``). The task categories
and the ``sentence-transformers`` tag are those the Hub's embedding datasets use.
"""

from __future__ import annotations

import glob

#: What the Hub lists embedding training sets under.
TASK_CATEGORIES = ("sentence-similarity", "feature-extraction")
TAGS = ("sentence-transformers", "kalm-data", "hard-negatives")
#: ``datasets`` refuses these characters in a config name (datasets.naming).
_BAD_CONFIG_CHARS = set(r"<>:/\|?*")
#: The Hub's size categories: (upper bound, name), bounds exclusive.
_SIZES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"),
    (100_000_000_000, "10B<n<100B"),
    (1_000_000_000_000, "100B<n<1T"),
)


def size_category(rows: int) -> str:
    """The Hub's size category of a dataset of ``rows`` rows."""
    for bound, name in _SIZES:
        if rows < bound:
            return name
    return "n>1T"


def config_name(task: str, folder: str) -> str:
    """The config of ``task`` (see module docstring)."""
    return folder if not task or _BAD_CONFIG_CHARS & set(task) else task


def data_files(folder: str) -> str:
    """The glob of a task's shards, relative to the card."""
    return f"data/{glob.escape(folder)}/part-*.parquet"


def front_matter(
    *,
    pretty_name: str,
    license: str,
    languages: list[str],
    rows: int,
    tasks: dict[str, str],
) -> dict:
    """The card's metadata; ``tasks`` maps each task to its folder under ``data/``."""
    return {
        "pretty_name": pretty_name,
        "license": license,
        "language": sorted(set(languages)),
        "task_categories": list(TASK_CATEGORIES),
        "size_categories": [size_category(rows)],
        "tags": list(TAGS),
        "configs": [
            {
                "config_name": config_name(task, folder),
                "data_files": [{"split": "train", "path": data_files(folder)}],
            }
            for task, folder in tasks.items()
        ],
    }


def render_front_matter(meta: dict) -> str:
    """``meta`` as the ``---`` delimited YAML block that opens README.md."""
    import yaml

    body = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{body}---\n"
