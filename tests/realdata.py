"""Real pairs from ../shared/data (override the folder with KALM_SHARED_DATA)."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

DATA = Path(
    os.environ.get("KALM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
PAIRS = DATA / "qa_pairs_en" / "pairs.jsonl.gz"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """``rows`` as a JSON Lines file at ``path`` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def load_pairs(n: int | None = None, source: str = "") -> list[dict]:
    """The first ``n`` rows of qa_pairs_en whose source starts with ``source``."""
    if not PAIRS.exists():
        pytest.skip(f"real data not found at {PAIRS}")
    out = []
    with gzip.open(PAIRS, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["source"].startswith(source):
                out.append(row)
                if n is not None and len(out) >= n:
                    break
    return out
