"""How well each ranking-consistency rule separates swapped (wrong) pairs from clean ones.

    python benchmarks/filter_quality.py                   # qa_pairs_en, 10% of positives swapped
    python benchmarks/filter_quality.py --limit 3000 --rules kalm mutual none

10% of the rows (seeded) have their positives permuted among themselves (a random cycle, so
none keeps its own), within the same source family (MedQuAD with MedQuAD, Disfl-QA with
Disfl-QA). ``--adjacent`` swaps with the next chosen row in file order instead: usually the same
disease or article, a much harder test (some such "swaps" are near-paraphrases of the truth). Then
``curate`` runs once per rule on the same file (embeddings come from the cache after the first
run) and the script prints, per rule, the share of swapped rows rejected by the filter and the
share of clean rows kept. Goal for the default: both >= 95%.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "qa_pairs_en" / "pairs.jsonl.gz"


def swapped_rows(
    path: str, share: float, seed: int, limit: int | None, adjacent: bool = False
) -> tuple[list[dict], set]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][:limit]
    rng = random.Random(seed)
    swapped: set[str] = set()
    for family in ("medquad", "disfl"):
        idx = [i for i, r in enumerate(rows) if r["source"].startswith(family)]
        # A random cycle over the chosen rows: no row keeps its own positive, and a row's new
        # positive comes from anywhere in its family (with --adjacent: from the next chosen row
        # in file order, i.e. usually the same disease or article: a much harder test).
        chosen = rng.sample(idx, int(len(idx) * share))
        if adjacent:
            chosen.sort()
        positives = [rows[i]["positive"] for i in chosen]
        for j, i in enumerate(chosen):
            rows[i] = {**rows[i], "positive": positives[(j + 1) % len(chosen)]}
            swapped.add(rows[i]["id"])
    return rows, swapped


def outcome(out: str) -> tuple[set, set]:
    """(row ids kept, row ids rejected by the filter)."""
    kept = set()
    for part in Path(out, "data").glob("*/part-*.parquet"):
        for ids in pq.read_table(part, columns=["source_ids"]).column("source_ids").to_pylist():
            kept.update(ids)
    dropped = set()
    for part in Path(out, "rejected", "filter").glob("part-*.parquet"):
        for rec in pq.read_table(part, columns=["record"]).column("record").to_pylist():
            dropped.update(json.loads(rec)["source_ids"])
    return kept, dropped


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT))
    p.add_argument("--limit", type=int)
    p.add_argument("--share", type=float, default=0.10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rules", nargs="+", default=["kalm", "mutual"])
    p.add_argument("--cache-dir", default=None, help="embedding cache (default: kalm-data's)")
    p.add_argument(
        "--adjacent",
        action="store_true",
        help="swap with the next chosen row in file order (same topic, harder)",
    )
    p.add_argument(
        "--grid",
        action="store_true",
        help="also sweep (filter_k, filter_query_k) from one unfiltered run",
    )
    args = p.parse_args()

    from kalm_data.curate.config import CurateConfig
    from kalm_data.curate.pipeline import run
    from kalm_data.inputs import InputSpec

    rows, swapped = swapped_rows(args.data, args.share, args.seed, args.limit, args.adjacent)
    work = Path(tempfile.mkdtemp(prefix="kalm-filter-"))
    src = work / "pairs.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} rows, {len(swapped)} swapped ({args.share:.0%})")
    print(f"{'rule':<8}{'swapped rejected':>18}{'clean kept':>12}{'kept rows':>11}")
    for rule in args.rules:
        out = str(work / rule)
        cfg = CurateConfig(
            inputs=[InputSpec(path=str(src), task="pairs")],
            output=out,
            cache_dir=args.cache_dir,
            filter_rule=rule,
        )
        run(cfg)
        kept, dropped = outcome(out)
        judged = kept | dropped  # rows that reached the filter
        clean = judged - swapped
        sw = judged & swapped
        print(
            f"{rule:<8}{len(sw & dropped) / max(len(sw), 1):>18.1%}"
            f"{len(clean & kept) / max(len(clean), 1):>12.1%}{len(kept):>11}",
            flush=True,
        )


if __name__ == "__main__":
    main()
