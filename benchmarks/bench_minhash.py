"""MinHash speed (ours vs datasketch) and what each near-duplicate threshold removes.

    python benchmarks/bench_minhash.py                 # speed on 3,000 qa_pairs_en pairs
    python benchmarks/bench_minhash.py --thresholds    # + removal rates on MRPC, STS-B, qa_pairs

Speed: pairs/s from text to the 128-permutation signature of a pair (query and positive
shingles, word 3-grams), with ``kalm_data.stages.neardup`` (vectorised numpy) and with
``datasketch`` (``MinHash.update_batch`` on the same shingles as strings; ``pip install
datasketch``); the ratio ours / datasketch, and how close the two estimates of Jaccard are.

Thresholds: for MRPC (label 1 paraphrases vs label 0) and STS-B English (score 5 vs score
<= 2), the fraction of sentence pairs whose shingle Jaccard is >= each threshold (a pair of
training pairs is removed when that holds for the query AND the positive); for qa_pairs_en,
how many training pairs the full near-duplicate rule removes at each threshold.
"""

from __future__ import annotations

import argparse
import collections
import csv
import gzip
import json
import time
from pathlib import Path

import numpy as np

from kalm_data.records import InputPair
from kalm_data.stages import neardup as nd
from kalm_data.stages.decontaminate import words

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def qa_pairs(limit: int | None) -> list[InputPair]:
    with gzip.open(DATA / "qa_pairs_en" / "pairs.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = rows[:limit] if limit else rows
    return [
        InputPair(
            id=r["id"],
            task=r["source"].split("/")[0],
            query=r["query"],
            positives=[r["positive"]],
            source_file="pairs.jsonl.gz",
            source_row=i + 1,
        )
        for i, r in enumerate(rows)
    ]


def ours(pairs: list[InputPair], num_perm: int) -> list[np.ndarray]:
    hasher = nd.MinHasher(num_perm)
    out = []
    for p in pairs:
        q, pos = nd.pair_shingles(p, 3)
        out.append(nd.signatures(hasher, q, pos)[2])
    return out


def string_shingles(text: str, k: int = 3) -> list[bytes]:
    tokens = words(text)
    if len(tokens) < k:
        return [" ".join(tokens).encode()] if tokens else []
    return [" ".join(tokens[i : i + k]).encode() for i in range(len(tokens) - k + 1)]


def theirs(pairs: list[InputPair], num_perm: int) -> list:
    from datasketch import MinHash

    out = []
    for p in pairs:
        m = MinHash(num_perm=num_perm)
        m.update_batch(
            string_shingles(p.query) + [b"p:" + s for s in string_shingles(p.positives[0])]
        )
        out.append(m)
    return out


def speed(pairs: list[InputPair], num_perm: int) -> None:
    nd.shingles("warm up", 3)
    t0 = time.perf_counter()
    mine = ours(pairs, num_perm)
    t1 = time.perf_counter()
    ds = theirs(pairs, num_perm)
    t2 = time.perf_counter()
    ours_rate, ds_rate = len(pairs) / (t1 - t0), len(pairs) / (t2 - t1)
    print(f"pairs: {len(pairs)}, num_perm: {num_perm}")
    print(f"ours (numpy):  {ours_rate:10.0f} pairs/s")
    print(f"datasketch:    {ds_rate:10.0f} pairs/s")
    print(f"ratio ours / datasketch: {ours_rate / ds_rate:.2f}x")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(pairs), 2000), rng.integers(0, len(pairs), 2000)
    gaps = [
        abs((mine[i] == mine[j]).mean() - ds[i].jaccard(ds[j]))
        for i, j in zip(a.tolist(), b.tolist(), strict=True)
    ]
    print(f"estimate agreement on 2000 random pairs: mean |ours - datasketch| {np.mean(gaps):.4f}")


def sentence_pairs() -> dict[str, list[tuple[str, str]]]:
    mrpc: dict[int, list] = {0: [], 1: []}
    for split in ("train", "val", "test"):
        with open(DATA / "mrpc" / f"msr-para-{split}.tsv", encoding="utf-8-sig") as f:
            for row in list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]:
                if len(row) == 5:
                    mrpc[int(row[0])].append((row[3], row[4]))
    sts: dict[str, list] = {"5": [], "low": []}
    for split in ("train", "dev", "test"):
        with open(DATA / "stsb_multi_mt" / f"stsb-en-{split}.csv", encoding="utf-8") as f:
            for a, b, score in csv.reader(f):
                if float(score) >= 5.0:
                    sts["5"].append((a, b))
                elif float(score) <= 2.0:
                    sts["low"].append((a, b))
    return {
        "MRPC paraphrase (label 1)": mrpc[1],
        "MRPC not paraphrase (label 0)": mrpc[0],
        "STS-B score 5": sts["5"],
        "STS-B score <= 2": sts["low"],
    }


def rule_removes(pairs: list[InputPair], threshold: float) -> int:
    """Training pairs the near-duplicate rule rejects (same core as the Beam transform)."""
    bands, rows = nd.lsh_params(threshold, 128)
    hasher = nd.MinHasher(128)
    buckets = collections.defaultdict(list)
    for p in pairs:
        q, pos = nd.pair_shingles(p, 3)
        q_sig, p_sig, sig = nd.signatures(hasher, q, pos)
        member = nd.Member.of(p.id, (q_sig, p_sig), q, pos)
        for band, key in enumerate(nd.band_keys(sig, bands, rows)):
            buckets[(p.task, band, key)].append(member)
    removed = set()
    for (task, _, _), members in buckets.items():
        if len(members) > 1:
            removed.update((task, pid) for pid, _ in nd.first_duplicate(members, threshold))
    return len(removed)


def thresholds(pairs: list[InputPair]) -> None:
    print("\nfraction of sentence pairs with word-3-gram Jaccard >= threshold")
    print(f"{'set':<32} {'n':>6} " + " ".join(f"{t:>6}" for t in THRESHOLDS))
    for name, rows in sentence_pairs().items():
        sims = np.array([nd.jaccard(nd.shingles(a, 3), nd.shingles(b, 3)) for a, b in rows])
        rates = " ".join(f"{(sims >= t).mean():6.3f}" for t in THRESHOLDS)
        print(f"{name:<32} {len(rows):>6} {rates}")
    print(f"\nqa_pairs_en: training pairs removed by the rule (of {len(pairs)})")
    for t in THRESHOLDS:
        n = rule_removes(pairs, t)
        print(f"  threshold {t}: {n} ({n / len(pairs):.2%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=3000, help="qa_pairs_en pairs for speed")
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--thresholds", action="store_true", help="also the removal rates")
    args = parser.parse_args()
    speed(qa_pairs(args.limit), args.num_perm)
    if args.thresholds:
        thresholds(qa_pairs(None))


if __name__ == "__main__":
    main()
