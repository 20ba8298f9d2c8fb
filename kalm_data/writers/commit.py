"""Staging and commit of a run's outputs.

A run writes everything under ``DIR/_staging/``; only a finished run moves ``data/`` and
``rejected/`` into place and writes ``manifest.json`` last, as the completion marker. A run
killed part-way leaves the previous outputs untouched (their manifest is removed first during
the swap, so a half-swapped folder never carries a manifest); the next run starts by clearing
the stale staging folder. The work that matters, the embeddings, survives in the cache.
"""

from __future__ import annotations

STAGING = "_staging"
OUTPUTS = ("data", "rejected")


def staging_dir(output: str) -> str:
    return f"{output.rstrip('/')}/{STAGING}"


def clear_staging(output: str) -> None:
    """Remove a stale staging folder left by a killed run."""
    import fsspec

    fs, base = fsspec.core.url_to_fs(staging_dir(output))
    if fs.exists(base):
        fs.rm(base, recursive=True)


def commit(output: str) -> None:
    """Move the staged outputs into place (see module docstring)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(output)
    root = root.rstrip("/")
    if fs.exists(f"{root}/manifest.json"):
        fs.rm(f"{root}/manifest.json")
    for name in OUTPUTS:
        if fs.exists(f"{root}/{name}"):
            fs.rm(f"{root}/{name}", recursive=True)
        staged = f"{root}/{STAGING}/{name}"
        if fs.exists(staged):
            fs.mv(staged, f"{root}/{name}", recursive=True)
