"""The generate run's own manifest sections, computed from the staged output.

Contract: ``generation_report(staging)`` returns ``{"llm": ..., "diversity": ...}``:

- ``llm``: per stage (``brainstorm``, ``example``): requests, answered from the cache, errors,
  prompt and completion tokens (what was paid for, and what a rerun did not pay again);
- ``diversity`` (of generate's pairs, or of synthesize's curated rows): distinct task
  definitions, personas used, examples per task type and per language, and the near-duplicate
  rate of generated queries: the share of queries whose word 3-gram Jaccard similarity (the
  shingles of ``kalm_data.stages.neardup``) with another query of the same output task is at
  least ``NEAR_DUP_JACCARD`` (on a seeded sample of at most ``NEAR_DUP_SAMPLE`` queries per
  task).
"""

from __future__ import annotations

import json
import random
from collections import Counter

NEAR_DUP_JACCARD = 0.7
NEAR_DUP_SAMPLE = 2000


def near_duplicate_rate(queries: list[str], threshold: float = NEAR_DUP_JACCARD) -> float:
    """Share of ``queries`` with a near-duplicate among the others (module docstring)."""
    from kalm_data.stages.neardup import jaccard, shingles

    if len(queries) < 2:
        return 0.0
    sets = [shingles(q, 3) for q in queries]
    index: dict[int, list[int]] = {}
    for i, s in enumerate(sets):
        for shingle in s.tolist():
            index.setdefault(shingle, []).append(i)
    flagged = 0
    for i, s in enumerate(sets):
        candidates = {j for shingle in s.tolist() for j in index[shingle] if j != i}
        if any(jaccard(s, sets[j]) >= threshold for j in candidates):
            flagged += 1
    return flagged / len(queries)


def _usage(fs, staging: str) -> dict:
    out = {}
    for path in sorted(fs.glob(f"{staging}/_counts/llm-*.json")):
        stage = path.rsplit("/", 1)[-1][len("llm-") : -len(".json")]
        with fs.open(path, "r") as f:
            out[stage] = json.load(f)
    return out


def _diversity(fs, staging: str) -> dict:
    import pyarrow.parquet as pq

    wanted = ["task", "task_type", "language", "instruction", "persona_id", "query"]
    rows: list[dict] = []
    for path in sorted(fs.glob(f"{staging}/data/*/part-*.parquet")):
        with fs.open(path, "rb") as f:
            names = pq.read_schema(f).names
            f.seek(0)
            rows += pq.read_table(f, columns=[c for c in wanted if c in names]).to_pylist()
    for row in rows:  # curated shards (synthesize) name the language in the task only
        row.setdefault("language", row["task"][len(row["task_type"]) + 1 :])
        row.setdefault("persona_id", None)
    by_task: dict[str, list[str]] = {}
    for row in rows:
        by_task.setdefault(row["task"], []).append(row["query"])
    rng = random.Random(0)
    flagged = total = 0
    for queries in by_task.values():
        sample = rng.sample(queries, NEAR_DUP_SAMPLE) if len(queries) > NEAR_DUP_SAMPLE else queries
        flagged += round(near_duplicate_rate(sample) * len(sample))
        total += len(sample)
    return {
        "examples": len(rows),
        "distinct_tasks": len({r["instruction"] for r in rows}),
        "personas_used": len({r["persona_id"] for r in rows if r["persona_id"]}),
        "per_task_type": dict(sorted(Counter(r["task_type"] for r in rows).items())),
        "per_language": dict(sorted(Counter(r["language"] for r in rows).items())),
        "query_near_duplicate_rate": round(flagged / total, 4) if total else 0.0,
        "near_duplicate_jaccard": NEAR_DUP_JACCARD,
    }


def generation_report(staging: str) -> dict:
    """See module docstring."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(staging)
    return {"llm": _usage(fs, root), "diversity": _diversity(fs, root)}
