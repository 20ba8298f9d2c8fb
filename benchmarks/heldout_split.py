"""Hold whole MedQuAD documents out of ``qa_pairs_en``: a training file and an in-domain BEIR set.

    python benchmarks/heldout_split.py OUT/ [--fraction 0.08] [--seed 0]

Contract: a random ``fraction`` of MedQuAD ``focus`` values (a disease, gene or condition: every
question and every answer about it) is held out. ``OUT/train.jsonl.gz`` holds every other pair,
minus any pair whose query or positive text also occurs in the held-out pairs, so no test query
and no test document is ever trained on. ``OUT/medical/`` is a BEIR folder (``corpus.jsonl``,
``queries.jsonl``, ``qrels/test.tsv``): one query per distinct held-out question text, one
document per distinct held-out answer text, a question's answers are its relevant documents.
Documents of one focus look alike (same disease, different question types), so the set is hard.
Disfl-QA pairs carry no source paragraph, so they are never held out (they are not medical).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def split(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train rows, held-out rows); held-out = every row of a sampled MedQuAD focus."""
    focuses = sorted({r["focus"] for r in rows if r.get("focus")})
    held = set(random.Random(seed).sample(focuses, round(fraction * len(focuses))))
    test = [r for r in rows if r.get("focus") in held]
    test_texts = {r["query"] for r in test} | {r["positive"] for r in test}
    train = [
        r
        for r in rows
        if r.get("focus") not in held
        and r["query"] not in test_texts
        and r["positive"] not in test_texts
    ]
    return train, test


def write_beir(test: list[dict], folder: Path) -> tuple[int, int]:
    """Write ``test`` pairs as a BEIR folder; returns (queries, documents)."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    qrels: dict[str, set[str]] = {}
    queries: dict[str, str] = {}
    corpus: dict[str, str] = {}
    for r in test:
        qid, did = "q" + _key(r["query"]), "d" + _key(r["positive"])
        queries[qid], corpus[did] = r["query"], r["positive"]
        qrels.setdefault(qid, set()).add(did)
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        for did, text in corpus.items():
            f.write(json.dumps({"_id": did, "title": "", "text": text}) + "\n")
    with open(folder / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, dids in qrels.items():
            for did in sorted(dids):
                f.write(f"{qid}\t{did}\t1\n")
    return len(queries), len(corpus)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out")
    p.add_argument("--pairs", default=str(SHARED / "qa_pairs_en" / "pairs.jsonl.gz"))
    p.add_argument("--fraction", type=float, default=0.08)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.pairs, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    train, test = split(rows, args.fraction, args.seed)
    with gzip.open(out / "train.jsonl.gz", "wt", encoding="utf-8") as f:
        for r in train:
            f.write(json.dumps(r) + "\n")
    nq, nd = write_beir(test, out / "medical")
    print(f"{len(rows)} pairs -> train {len(train)}, held out {len(test)} pairs "
          f"({nq} queries, {nd} documents)")  # fmt: skip


if __name__ == "__main__":
    main()
