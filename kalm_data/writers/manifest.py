"""The run's manifest and funnel: counts computed from the files actually written.

Contract: ``build_manifest`` reads only small columns of ``data/`` and ``rejected/`` (rows per
example, stage, reason) and the read count written by the pipeline, so the numbers are those of
the output on disk, whatever the runner. ``counts.balanced`` is ``rows_read == rows_kept +
rows_rejected``; the CLI fails the run when it is not.
"""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata

import pyarrow.parquet as pq

from kalm_data import __version__
from kalm_data.reasons import CORPUS
from kalm_data.records import SCHEMA_VERSION
from kalm_data.writers.names import folder_name

PACKAGES = (
    "apache-beam",
    "torch",
    "transformers",
    "sentence-transformers",
    "faiss-cpu",
    "faiss-gpu-cu12",
    "pyarrow",
    "pydantic",
    "datasets",
    "numpy",
)


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape the output."""
    out = {"python": platform.python_version(), "kalm-data": __version__}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _files(fs, folder: str) -> list[str]:
    return sorted(fs.glob(f"{folder}/*/part-*.parquet")) if fs.exists(folder) else []


def count_outputs(root: str) -> dict:
    """Per-task kept examples/rows and per-stage/reason rejected rows under ``root``."""
    import fsspec

    fs, base = fsspec.core.url_to_fs(root)
    tasks: dict[str, dict] = {}
    for path in _files(fs, f"{base}/data"):
        with fs.open(path, "rb") as f:
            table = pq.read_table(f, columns=["task", "source_rows"], use_threads=False)
        for task, rows in zip(
            table["task"].to_pylist(), table["source_rows"].to_pylist(), strict=True
        ):
            t = tasks.setdefault(task, {"folder": folder_name(task), "examples": 0, "rows": 0})
            t["examples"] += 1
            t["rows"] += len(rows)
    rejected: dict[str, dict[str, int]] = {}
    for path in _files(fs, f"{base}/rejected"):
        with fs.open(path, "rb") as f:
            table = pq.read_table(f, columns=["stage", "reason", "rows"], use_threads=False)
        for stage, reason, rows in zip(
            *(table[c].to_pylist() for c in ("stage", "reason", "rows")), strict=True
        ):
            by_reason = rejected.setdefault(stage, {})
            by_reason[reason] = by_reason.get(reason, 0) + rows
    return {"tasks": tasks, "rejected": rejected}


def split_metrics(metrics: dict[str, int]) -> tuple[dict, dict]:
    """Counters -> (per stage ``{"in", "out", "rejected": {reason: rows}}`` from the stage
    shells' ``<stage>.in/.out/.rejected.<reason>``, the other counters)."""
    stages: dict[str, dict] = {}
    other: dict[str, int] = {}
    for name, value in metrics.items():
        stage, dot, what = name.partition(".")
        if not dot:
            other[name] = value
            continue
        entry = stages.setdefault(stage, {"in": 0, "out": 0, "rejected": {}})
        if what.startswith("rejected."):
            entry["rejected"][what.removeprefix("rejected.")] = value
        else:
            entry[what] = value
    return stages, other


def build_manifest(
    root: str,
    rows_read: int,
    settings: dict,
    inputs: list[dict],
    metrics: dict,
    timings: dict | None = None,
) -> dict:
    """The manifest of the outputs under ``root`` (see module docstring). ``metrics`` are the
    run's counters (its tallies, ``kalm_data.beam.counts``); ``timings`` seconds per stage.
    """
    out = count_outputs(root)
    stages, other = split_metrics(metrics)
    corpus_rejected = out["rejected"].pop(CORPUS, {})
    kept = sum(t["rows"] for t in out["tasks"].values())
    rejected = sum(n for by_reason in out["rejected"].values() for n in by_reason.values())
    return {
        "kalm_data_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "counts": {
            "rows_read": rows_read,
            "rows_kept": kept,
            "rows_rejected": rejected,
            "examples_kept": sum(t["examples"] for t in out["tasks"].values()),
            "balanced": rows_read == kept + rejected,
            "rejected": out["rejected"],
            "corpus_rows_rejected": corpus_rejected,
        },
        "tasks": out["tasks"],
        "stages": stages,
        "timings": timings or {},
        "mining": other,
        "inputs": inputs,
        "settings": settings,
        "versions": versions(),
    }


def format_funnel(manifest: dict) -> str:
    """A plain-text summary table of the funnel."""
    c = manifest["counts"]
    lines = [
        f"{'stage':<10} {'reason':<28} {'rows':>10}",
        "-" * 50,
        f"{'read':<10} {'':<28} {c['rows_read']:>10}",
    ]
    for stage, by_reason in c["rejected"].items():
        for reason, n in sorted(by_reason.items()):
            lines.append(f"{stage:<10} {reason:<28} {n:>10}")
    lines.append(f"{'rejected':<10} {'(all stages)':<28} {c['rows_rejected']:>10}")
    lines.append("-" * 50)
    lines.append(
        f"{'kept':<10} {'(' + str(c['examples_kept']) + ' examples)':<28} {c['rows_kept']:>10}"
    )
    for task, t in sorted(manifest["tasks"].items()):
        lines.append(f"  {task:<36} {t['examples']:>10} examples")
    if not c["balanced"]:
        lines.append("UNBALANCED: rows read != kept + rejected")
    return "\n".join(lines)


def write_json(obj: dict, path: str) -> None:
    """Write ``obj`` as JSON atomically."""
    import uuid

    import fsspec

    fs, target = fsspec.core.url_to_fs(path)
    fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    tmp = f"{target}.tmp-{uuid.uuid4().hex}"
    with fs.open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False, ensure_ascii=False)
    fs.mv(tmp, target)
