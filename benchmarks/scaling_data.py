"""Real (query, positive) pair sets of given sizes for the scaling benchmark, built the same way
every time.

    python benchmarks/scaling_data.py --sizes 5000 10000 --out /tmp/sets  # pairs-5000.jsonl ...

The pool is the real pairs of ../shared/data, in this order, cut at ``pool_rows`` rows
(default ``POOL_ROWS`` = 40,000, or the largest size asked for when that is larger):

1. ``qa_pairs_en/pairs.jsonl.gz``: 23,372 rows (MedQuAD QA, Disfl-QA question pairs);
2. ``xquad/xquad.jsonl``: question -> paragraph, all 12 languages, 14,280 rows;
3. ``stsb_multi_mt/stsb-*-train.csv``: sentence1 -> sentence2 of the train pairs scored >= 4,
   languages in name order (1,406 per language, 15,466 in all), only as many as needed.

The pool is shuffled once with ``seed``; the set of size n is its first n rows. So the sets are
nested (the 5k set is part of the 10k set, as a growing dataset) and every size has the same
mix of sources, whatever sizes are asked for: a 500-row trial set is a sample of the same
40k-row pool as the 40k-row set. ``disjoint=True`` gives consecutive slices instead (no row in
two sets), possible only while the sizes add up to at most the 53,118 real pairs there are (not
for 5k + 10k + 20k + 40k). Each row has ``id`` (unique: ``<dataset>:<line>``), ``query``,
``positive``, ``task`` (the dataset: qa_pairs_en, xquad or stsb_multi_mt) and ``source`` (the
dataset's own sub-source, e.g. ``medquad/2_GARD_QA``, ``xquad/de``, ``stsb/ja``). Licences:
each dataset's SOURCE.md (research use; nothing here is shipped).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
POOL_ROWS = 40_000
STSB_MIN_SCORE = 4.0


def qa_pairs_en(data: Path) -> Iterator[dict]:
    """qa_pairs_en rows in file order (its own ids repeat 34 times: ours are by line)."""
    with gzip.open(data / "qa_pairs_en" / "pairs.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            row = json.loads(line)
            yield _row(
                f"qa_pairs_en:{i}", row["query"], row["positive"], "qa_pairs_en", row["source"]
            )


def xquad(data: Path) -> Iterator[dict]:
    """XQuAD question -> paragraph, every language, in file order."""
    with open(data / "xquad" / "xquad.jsonl", encoding="utf-8") as f:
        for i, line in enumerate(f):
            row = json.loads(line)
            yield _row(f"xquad:{i}", row["query"], row["positive"], "xquad", f"xquad/{row['lang']}")


def stsb(data: Path, min_score: float = STSB_MIN_SCORE) -> Iterator[dict]:
    """STS-B train pairs scored >= ``min_score``, languages in name order, rows in file order."""
    for path in sorted((data / "stsb_multi_mt").glob("stsb-*-train.csv")):
        lang = path.name.split("-")[1]
        with open(path, encoding="utf-8", newline="") as f:
            for i, (first, second, score) in enumerate(csv.reader(f)):
                if float(score) >= min_score:
                    yield _row(
                        f"stsb_multi_mt:{lang}:{i}", first, second, "stsb_multi_mt", f"stsb/{lang}"
                    )


def _row(row_id: str, query: str, positive: str, task: str, source: str) -> dict:
    return {"id": row_id, "query": query, "positive": positive, "task": task, "source": source}


def pool(pool_rows: int = POOL_ROWS, data: Path = DATA) -> list[dict]:
    """The first ``pool_rows`` rows of qa_pairs_en, then xquad, then stsb (unshuffled)."""
    rows: list[dict] = []
    for source in (qa_pairs_en, xquad, stsb):
        for row in source(data):
            if len(rows) >= pool_rows:
                return rows
            rows.append(row)
    if len(rows) < pool_rows:
        raise ValueError(f"only {len(rows):,} real pairs in {data}, {pool_rows:,} asked for")
    return rows


def build_sets(
    sizes: list[int],
    seed: int = 0,
    pool_rows: int | None = None,
    data: Path = DATA,
    disjoint: bool = False,
    qa_only: bool = False,
) -> dict[int, list[dict]]:
    """{size: rows}: the first ``size`` rows of the shuffled pool (nested sets, see the module
    docstring); with ``disjoint``, consecutive slices of it instead, smallest first (no row in
    two sets: the sizes must add up to at most the pool, 53,118 rows in all). ``qa_only``: the
    pool is qa_pairs_en alone (23,372 rows; that size is the whole set)."""
    sizes = sorted(set(sizes))
    needed = sum(sizes) if disjoint else max(sizes)
    if qa_only:
        rows = list(qa_pairs_en(data))
    else:
        rows = pool(max(POOL_ROWS, needed) if pool_rows is None else pool_rows, data)
    if needed > len(rows):
        raise ValueError(f"{needed:,} rows asked for, more than the pool ({len(rows):,} rows)")
    random.Random(seed).shuffle(rows)
    if not disjoint:
        return {n: rows[:n] for n in sizes}
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return {n: rows[start : start + n] for n, start in zip(sizes, starts, strict=True)}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """``rows`` as JSON Lines at ``path`` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 40000])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--disjoint", action="store_true", help="no row in two sets")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    for n, rows in build_sets(args.sizes, args.seed, disjoint=args.disjoint).items():
        write_jsonl(args.out / f"pairs-{n}.jsonl", rows)


if __name__ == "__main__":
    main()
