"""Does curation pay? Ablations of ``kalm-data curate`` scored in domain (held out) and on SciFact.

    python benchmarks/heldout_split.py /tmp/cp/split
    kalm-data curate --input /tmp/cp/split/train.jsonl.gz --map task=source --no-near-dup \\
        --output /tmp/cp/cur/default
    # again with --filter-rule none -> cur/nofilter, --filter-k 20 --filter-margin 0 -> cur/strict,
    # --filter-rule none --margin 0.9 -> cur/nofilter-m90
    python benchmarks/curation_pays.py --work /tmp/cp --seeds 0 1

Every arm trains the offline MiniLM with the project's trainer (``kalm_data.train.loop.train``,
the same call as ``benchmarks/train_curated_vs_raw.py``) with identical settings (steps, batch,
lr, temperature, no instructions, seed); only the rows differ:

- ``raw``: the training pairs as they are, one row per pair, in-batch negatives only;
- ``curated``: ``cur/default`` with ``--num-negatives`` mined negatives;
- ``curated-0neg``: ``cur/default``, in-batch negatives only;
- ``nofilter``/``nofilter-0neg``/``nofilter-1neg``: ``cur/nofilter`` (mining and merging, no
  filter), with ``--num-negatives``, 0 or 1 mined negatives;
- ``nofilter-m90``: ``cur/nofilter-m90``, the same with ``--margin 0.9`` (candidates scoring
  above 0.9 x the positive are skipped, against 0.95 by default);
- ``expanded``/``expanded-0neg``: ``cur/default`` with each merged example split back into one row
  per positive (same negatives);
- ``strict``: ``cur/strict`` (the proposed stricter filter);
- ``k30-0neg``: ``cur/k30``, curated with the filter setting ``benchmarks/filter_quality.py``
  chooses on its tune set (``--filter-k 30 --filter-margin 0``), in-batch negatives only.

With wrong positives (``benchmarks/noisy_split.py``: 10% of the training positives swapped
within their source), the same arms on the noisy folder ask whether the filter pays where it is
meant to:

    python benchmarks/noisy_split.py /tmp/cp/split /tmp/cpn/split
    kalm-data curate --input /tmp/cpn/split/train.jsonl.gz --map task=source --no-near-dup \\
        --output /tmp/cpn/cur/default   # and --filter-k 30 --filter-margin 0 -> cur/k30
    python benchmarks/curation_pays.py --work /tmp/cpn --arms raw curated-0neg k30-0neg

An arm whose folder is missing is skipped. Results are appended to ``WORK/results.jsonl`` and a
finished (arm, seed) is not run again. Besides the scores it prints, per arm, the rows trained on
and the share of medical rows among the rows the sampler actually picks in ``steps`` batches.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_curated_vs_raw import SHARED, raw_shards  # noqa: E402

log = logging.getLogger(__name__)

#: arm -> (data folder under WORK, hard negatives per query; None = ``--num-negatives``)
ARMS: dict[str, tuple[str, int | None]] = {
    "raw": ("raw-shards", 0),
    "curated": ("cur/default", None),
    "curated-0neg": ("cur/default", 0),
    "nofilter": ("cur/nofilter", None),
    "nofilter-0neg": ("cur/nofilter", 0),
    "nofilter-1neg": ("cur/nofilter", 1),
    "nofilter-m90": ("cur/nofilter-m90", None),
    "expanded": ("expanded", None),
    "expanded-0neg": ("expanded", 0),
    "strict": ("cur/strict", None),
    "k30-0neg": ("cur/k30", 0),
}


def expand_positives(curated: Path, out: Path) -> Path:
    """Copy of ``curated``'s task shards with one row per positive (same negatives)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for part in sorted(curated.glob("data/*/part-*.parquet")):
        table = pq.read_table(part)
        rows = []
        for r in table.to_pylist():
            scores = r.get("positive_scores") or []
            for j, positive in enumerate(r["positives"]):
                one = dict(r, positives=[positive], id=f"{r['id']}-p{j}")
                one["positive_scores"] = [scores[j]] if len(scores) == len(r["positives"]) else []
                rows.append(one)
        target = out / part.relative_to(curated)
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), target)
    return out


def pick_mix(data: str, batch_size: int, num_negatives: int, steps: int, seed: int) -> dict:
    """Rows, positives, and the medical share of the rows picked in ``steps`` batches."""
    from kalm_data.train.data import load_rows
    from kalm_data.train.sampler import SemiHomogeneousBatchSampler

    rows = load_rows([data])
    sampler = SemiHomogeneousBatchSampler(rows, batch_size, num_negatives, 0.0, seed)
    picked = [rows[p.row] for _ in range(steps) for p in sampler.next_batch()]
    medical = sum(r.task.startswith("medquad") for r in picked)
    ghr = sum("GHR" in r.task for r in picked)
    return {
        "rows": len(rows),
        "positives": sum(len(r.positives) for r in rows),
        "medical_rows": sum(r.task.startswith("medquad") for r in rows),
        "picked_medical": medical / len(picked),
        "picked_ghr": ghr / len(picked),
        "epochs": sampler.epoch,
    }


def subsample(beir, n_queries: int, corpus_size: int, seed: int = 0):
    """``n_queries`` random judged queries, their documents plus random others up to
    ``corpus_size`` (0: keep all)."""
    import random

    from kalm_data.train.evaluate import BeirSet

    if not n_queries or n_queries >= len(beir.queries):
        return beir
    qids = sorted(beir.queries)
    random.Random(seed).shuffle(qids)
    qrels = {q: beir.qrels[q] for q in qids[:n_queries]}
    judged = set().union(*qrels.values())
    others = sorted(set(beir.corpus) - judged)
    random.Random(seed).shuffle(others)
    keep = judged | set(others[: max(0, corpus_size - len(judged))])
    corpus = {d: t for d, t in beir.corpus.items() if d in keep}
    return BeirSet({q: beir.queries[q] for q in qrels}, corpus, qrels)


def score(model_dir: str, beir, max_len: int) -> float:
    """nDCG@10 of a SentenceTransformer folder on ``beir``, texts cut at ``max_len`` tokens."""
    from sentence_transformers import SentenceTransformer

    from kalm_data.train.evaluate import evaluate

    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = max_len
    kw = {"batch_size": 32, "convert_to_tensor": True, "show_progress_bar": False}
    return evaluate(
        lambda texts: model.encode(texts, **kw).cpu(),
        lambda texts: model.encode(texts, **kw).cpu(),
        beir,
    )["ndcg@10"]


def run_arm(args, arm: str, seed: int, beirs: dict) -> dict:
    from kalm_data.train.config import TrainConfig
    from kalm_data.train.loop import train

    folder, negatives = ARMS[arm]
    data = str(Path(args.work) / folder)
    negatives = args.num_negatives if negatives is None else negatives
    mix = pick_mix(data, args.batch_size, negatives, args.steps, seed)
    out = Path(args.work) / "models" / f"{arm}-s{seed}"
    cfg = TrainConfig(
        data=[data], model=args.model, output=str(out), max_steps=args.steps,
        batch_size=args.batch_size, num_negatives=negatives, query_max_len=args.max_len,
        passage_max_len=args.max_len, lr=args.lr, temperature=args.temperature,
        homogeneous_ratio=0.0, seed=seed, instructions=False, resume=False, save_every=0,
        log_every=max(1, args.steps // 5),
    )  # fmt: skip
    train(cfg)
    scores = {name: score(str(out), beir, args.max_len) for name, beir in beirs.items()}
    shutil.rmtree(out, ignore_errors=True)
    return {"arm": arm, "seed": seed, "negatives": negatives, **scores, **mix}


def print_table(results: list[dict], names: list[str]) -> None:
    head = f"{'arm':15s} {'seed':>4s} " + " ".join(f"{n:>9s}" for n in names)
    print(head + f" {'rows':>6s} {'pos':>6s} {'med%':>5s} {'pickmed%':>8s} {'pickGHR%':>8s}")
    for r in results:
        cells = " ".join(f"{r[n]:9.4f}" for n in names)
        print(
            f"{r['arm']:15s} {r['seed']:>4} {cells} {r['rows']:6d} {r['positives']:6d} "
            f"{100 * r['medical_rows'] / max(1, r['rows']):5.1f} {100 * r['picked_medical']:8.1f} "
            f"{100 * r['picked_ghr']:8.1f}"
        )
    print(f"\n{'arm':15s} {'n':>2s} " + " ".join(f"{n + ' mean±sd':>18s}" for n in names))
    for arm in dict.fromkeys(r["arm"] for r in results):
        rs = [r for r in results if r["arm"] == arm]
        cells = []
        for n in names:
            v = [r[n] for r in rs]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{statistics.mean(v):.4f}±{sd:.4f} ({min(v):.3f}-{max(v):.3f})")
        print(f"{arm:15s} {len(rs):2d} " + " ".join(f"{c:>18s}" for c in cells))


def main(argv: list[str] | None = None) -> None:
    import torch

    from kalm_data.embed.teacher import default_teacher
    from kalm_data.train.evaluate import load_beir

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--work", default="/tmp/cp")
    p.add_argument("--arms", nargs="+", default=list(ARMS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--num-negatives", type=int, default=3)
    p.add_argument("--max-len", type=int, default=128, help="tokens, training and scoring")
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--scifact", default=str(SHARED / "scifact"))
    p.add_argument("--scifact-queries", type=int, default=150, help="0: all 300")
    p.add_argument("--scifact-corpus", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--table-only", action="store_true", help="print WORK/results.jsonl")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    args.model = default_teacher()
    if not (work / "raw-shards").exists():
        raw_shards(work / "split" / "train.jsonl.gz", work / "raw-shards")
    if (work / "cur/default").exists() and not (work / "expanded").exists():
        expand_positives(work / "cur/default", work / "expanded")
    beirs = {
        "medical": load_beir(str(work / "split" / "medical"), "test"),
        "scifact": subsample(
            load_beir(args.scifact, "test"), args.scifact_queries, args.scifact_corpus
        ),
    }
    names = list(beirs)
    for n, b in beirs.items():
        print(f"{n}: {len(b.queries)} queries, {len(b.corpus)} documents")
    store = work / "results.jsonl"
    results = [json.loads(line) for line in store.open()] if store.exists() else []
    if not args.table_only:
        if not any(r["arm"] == "untrained" for r in results):
            base = {n: score(args.model, b, args.max_len) for n, b in beirs.items()}
            row = {"arm": "untrained", "seed": 0, **base, "rows": 0, "positives": 0}
            row |= {"medical_rows": 0, "picked_medical": 0.0, "picked_ghr": 0.0}
            results.append(row)
            with store.open("a") as f:
                f.write(json.dumps(row) + "\n")
        for seed in args.seeds:
            for arm in args.arms:
                done = any(r["arm"] == arm and r["seed"] == seed for r in results)
                if done or not (work / ARMS[arm][0]).exists():
                    continue
                row = run_arm(args, arm, seed, beirs)
                results.append(row)
                with store.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    order = {a: i for i, a in enumerate(["untrained", *ARMS])}
    results.sort(key=lambda r: (order.get(r["arm"], 99), r["seed"]))
    print(f"\n{args.steps} steps x {args.batch_size}, lr {args.lr}, tau {args.temperature}, "
          f"{args.num_negatives} negatives, no instructions; nDCG@10")  # fmt: skip
    print_table(results, names)


if __name__ == "__main__":
    main()
