"""``write_card``: read a curate output, compute its statistics, write README.md and the charts.

Contract: reads only ``DIR/manifest.json`` and ``DIR/data/<folder>/part-*.parquet`` (local or
any fsspec URL); writes only ``DIR/README.md`` and ``DIR/card/*.png``, each through a temporary
file renamed into place, the charts first and the README last (so the README never links a
chart that is not there). Charts of an earlier card that this one no longer has (a task gone)
are removed; nothing else in ``card/`` is touched, and ``data/``, ``rejected/`` and the manifest
never are. ``UsageError`` when ``DIR`` holds no kalm-data manifest.
"""

from __future__ import annotations

import json
import logging
import re
import uuid

from kalm_data.errors import UsageError

log = logging.getLogger(__name__)

README = "README.md"
CHARTS = "card"
#: The names of the charts a card writes (so only those are ever removed).
_CHART_NAME = re.compile(r"^(funnel|(scores|ranks|lengths)-.+)\.png$")
_PART = re.compile(r"^part-.*\.parquet$")


def read_manifest(fs, root: str, output_dir: str) -> dict:
    """``DIR/manifest.json`` as a dict; ``UsageError`` if missing or not kalm-data's."""
    path = f"{root}/manifest.json"
    if not fs.exists(path):
        raise UsageError(f"{output_dir}: no manifest.json: not a kalm-data output")
    try:
        with fs.open(path, "r", encoding="utf-8") as f:
            manifest = json.load(f)
    except ValueError as e:
        raise UsageError(f"{output_dir}/manifest.json: not valid JSON ({e})") from e
    if not isinstance(manifest, dict) or "kalm_data_version" not in manifest:
        raise UsageError(f"{output_dir}/manifest.json: not a kalm-data manifest")
    return manifest


def shard_files(fs, folder: str) -> list[str]:
    """The ``part-*.parquet`` files directly in ``folder``, sorted ([] if it does not exist)."""
    if not fs.exists(folder):
        return []
    paths = fs.ls(folder, detail=False)
    return sorted(p for p in paths if _PART.match(p.rstrip("/").rsplit("/", 1)[-1]))


def write_atomic(fs, path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it to ``path``."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with fs.open(tmp, "wb") as f:
            f.write(data)
        fs.mv(tmp, path)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)


def _card(fs, root: str, manifest: dict, license, languages, pretty_name):
    from kalm_data.card.language import detect_language, resolve_languages
    from kalm_data.card.render import Card
    from kalm_data.card.stats import task_stats

    stats = {}
    for task, entry in (manifest.get("tasks") or {}).items():
        stats[task] = task_stats(fs, shard_files(fs, f"{root}/data/{entry['folder']}"), task)
    detected = {task: detect_language(s.texts) for task, s in stats.items()}
    settings = manifest.get("settings") or {}
    return Card(
        manifest=manifest,
        stats=stats,
        languages=resolve_languages(detected, languages),
        license=license or settings.get("license") or "other",
        pretty_name=pretty_name or root.rstrip("/").rsplit("/", 1)[-1] or "kalm-data dataset",
    )


def _charts(card) -> dict[str, bytes]:
    """Relative path -> PNG bytes of every chart the README links."""
    from kalm_data.card import plots
    from kalm_data.card.funnel import funnel_steps
    from kalm_data.card.task_section import chart_path

    filter_k = card.settings.get("filter_k") if card.settings.get("filter_rule") != "none" else None
    charts = {
        chart_path("funnel"): plots.funnel_chart(funnel_steps(card.manifest.get("counts") or {}))
    }
    for task, s in card.stats.items():
        folder = card.folders[task]
        name = card.configs[task]
        charts[chart_path("scores", folder)] = plots.score_chart(
            name, s.positive_scores, s.negative_scores
        )
        charts[chart_path("ranks", folder)] = plots.rank_chart(name, s.positive_ranks, filter_k)
        charts[chart_path("lengths", folder)] = plots.length_chart(
            name, s.query_chars, s.positive_chars
        )
    return charts


def _remove_stale_charts(fs, root: str, keep: set[str]) -> None:
    folder = f"{root}/{CHARTS}"
    for path in fs.ls(folder, detail=False) if fs.exists(folder) else []:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if _CHART_NAME.match(name) and f"{CHARTS}/{name}" not in keep:
            fs.rm(path)


#: Every card kalm-data writes carries this tag in its front matter.
OWN_TAG = "- kalm-data"


def _check_readme_is_ours(fs, path: str, output_dir: str) -> None:
    """``UsageError`` when ``path`` exists and is not a card kalm-data wrote: never replace a
    README the user wrote."""
    if not fs.exists(path):
        return
    with fs.open(path, "r", encoding="utf-8", errors="replace") as f:
        head = f.read(4096)
    if not (head.startswith("---") and OWN_TAG in head.split("\n---", 1)[0]):
        from kalm_data.errors import UsageError

        raise UsageError(
            f"{output_dir}/README.md was not written by kalm-data; move it away to write the card"
        )


def write_card(
    output_dir: str,
    license: str | None = None,
    languages: list[str] | None = None,
    pretty_name: str | None = None,
) -> str:
    """Write the dataset card of the curate output ``output_dir``; returns README.md's path.

    ``license``: a Hub license id (default: the manifest's settings' ``license``, else
    ``other``); ``languages``: ``CODE`` or ``TASK=CODE`` overrides of the detected languages;
    ``pretty_name``: the title (default: the folder's name). See the module docstring.
    """
    import fsspec

    from kalm_data.card.render import render_readme

    fs, root = fsspec.core.url_to_fs(output_dir)
    root = root.rstrip("/")
    manifest = read_manifest(fs, root, output_dir)
    _check_readme_is_ours(fs, f"{root}/{README}", output_dir)
    card = _card(fs, root, manifest, license, languages, pretty_name)
    charts = _charts(card)
    fs.makedirs(f"{root}/{CHARTS}", exist_ok=True)
    for rel, png in charts.items():
        write_atomic(fs, f"{root}/{rel}", png)
    _remove_stale_charts(fs, root, set(charts))
    write_atomic(fs, f"{root}/{README}", render_readme(card).encode("utf-8"))
    log.debug("wrote %s/%s and %d charts in %s/", output_dir, README, len(charts), CHARTS)
    return f"{output_dir.rstrip('/')}/{README}"
