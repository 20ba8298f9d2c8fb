"""What the ranking-consistency filter rejects, by source and MedQuAD question type.

    python benchmarks/filter_rejections.py /tmp/cp/split /tmp/cp/cur/default [/tmp/cp/cur/strict]

Contract: reads ``SPLIT/train.jsonl.gz`` (the pairs curated, with ``source`` and ``qtype``),
``SPLIT/medical/queries.jsonl`` is not needed: the held-out pairs' question types are recomputed
from the split's complement. For each curated folder it reads the filter's rejected rows
(``rejected/*filter*/part-*.parquet`` or any rejected stage whose reason is
``inconsistent_ranking``), maps them back to their input pair by id, and prints rejections per
source and per question type next to the training rows of that type and the share of held-out
(in-domain test) queries of that type. MedQuAD pairs are correct by construction (official
question/answer pairs), so a MedQuAD rejection is a clean pair thrown away.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def rejected_ids(folder: Path) -> list[str]:
    """Ids of the rows the filter rejected (reason ``inconsistent_ranking``)."""
    import pyarrow.parquet as pq

    ids = []
    for part in sorted(folder.glob("rejected/*/part-*.parquet")):
        for r in pq.read_table(part, columns=["id", "reason"]).to_pylist():
            if r["reason"] == "inconsistent_ranking":
                ids.append(r["id"])
    return ids


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("split")
    p.add_argument("folders", nargs="+")
    p.add_argument("--pairs", default=str(SHARED / "qa_pairs_en" / "pairs.jsonl.gz"))
    args = p.parse_args(argv)
    with gzip.open(Path(args.split) / "train.jsonl.gz", "rt", encoding="utf-8") as f:
        train = {r["id"]: r for r in map(json.loads, f)}
    with gzip.open(args.pairs, "rt", encoding="utf-8") as f:
        all_rows = [json.loads(line) for line in f]
    held = {r["focus"] for r in all_rows if r.get("focus")} - {
        r.get("focus") for r in train.values()
    }
    test_q = {(r["qtype"], r["query"]) for r in all_rows if r.get("focus") in held}
    test_types = collections.Counter(t for t, _ in test_q)
    train_types = collections.Counter(r.get("qtype") or "-" for r in train.values())
    for folder in args.folders:
        ids = rejected_ids(Path(folder))
        rows = [train[i] for i in ids if i in train]
        print(f"\n{folder}: {len(ids)} rows rejected by the filter ({len(rows)} mapped)")
        for source, n in collections.Counter(r["source"] for r in rows).most_common():
            print(f"  {source:26s} {n:5d}")
        by_type = collections.Counter(r.get("qtype") or "-" for r in rows)
        print(f"  {'qtype':22s} {'rejected':>8s} {'of train':>8s} {'rej%':>6s} {'test q%':>7s}")
        for qtype, n in by_type.most_common(12):
            share = 100 * test_types[qtype] / max(1, len(test_q))
            print(
                f"  {qtype:22s} {n:8d} {train_types[qtype]:8d} "
                f"{100 * n / train_types[qtype]:6.1f} {share:7.1f}"
            )


if __name__ == "__main__":
    main()
