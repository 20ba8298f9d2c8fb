"""curate vs sentence-transformers' mine_hard_negatives, and the encoding floor, in one run.

    python benchmarks/bench_curate.py                       # ../shared/data/qa_pairs_en, 23k pairs
    python benchmarks/bench_curate.py --limit 2000          # a quick look

Same teacher (the offline MiniLM), same pool (the positives), same rank window (50-99), same
number of negatives (7), FAISS on both sides. Each contender runs in its own process, so its
peak memory (max RSS) is its own. Prints wall times, peak memory and the ratios:
``st / curate`` (> 1: curate is faster) and ``curate / floor`` (the floor is encoding every
unique text once with SentenceTransformer.encode and nothing else).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "qa_pairs_en" / "pairs.jsonl.gz"


def load(path: str, limit: int | None) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return rows[:limit] if limit else rows


def peak_mb() -> float:
    """Peak RSS of this process or of any of its finished children (Beam worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def floor(rows: list[dict]) -> dict:
    """Encode every unique text once: the least any miner with this teacher must do."""
    from sentence_transformers import SentenceTransformer

    from kalm_data.embed.teacher import default_teacher
    from kalm_data.text import normalize

    texts = sorted({normalize(t) for r in rows for t in (r["query"], r["positive"])})
    start = time.perf_counter()
    model = SentenceTransformer(default_teacher(), device="cpu")
    model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    return {"seconds": time.perf_counter() - start, "texts": len(texts), "peak_mb": peak_mb()}


def mine_st(rows: list[dict], corpus: list[str] | None = None):
    """``mine_hard_negatives`` as we compare against it (same teacher, ranks 50-99, 7
    negatives, FAISS); ``corpus``: extra pool texts. Returns its dataset."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    from kalm_data.embed.teacher import default_teacher

    model = SentenceTransformer(default_teacher(), device="cpu")
    ds = Dataset.from_dict(
        {"query": [r["query"] for r in rows], "positive": [r["positive"] for r in rows]}
    )
    return mine_hard_negatives(
        ds,
        model,
        corpus=corpus,
        range_min=50,
        range_max=100,
        num_negatives=7,
        sampling_strategy="random",
        relative_margin=0.05,
        use_faiss=True,
        output_format="n-tuple",
        batch_size=32,
        verbose=False,
    )


def st(rows: list[dict]) -> dict:
    start = time.perf_counter()
    out = mine_st(rows)
    return {"seconds": time.perf_counter() - start, "rows_out": len(out), "peak_mb": peak_mb()}


def curate(path: str, limit: int | None, work: Path, precision: str, extra: list[str]) -> dict:
    """A cold run (fresh cache), then a re-run with other mining settings (all from cache)."""
    from kalm_data.curate.config import CurateConfig
    from kalm_data.curate.pipeline import run
    from kalm_data.inputs import InputSpec

    src = path
    if limit:
        src = str(work / "pairs.jsonl")
        with open(src, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in load(path, limit))
    cfg = CurateConfig(
        inputs=[InputSpec(path=src, task="pairs")],
        output=str(work / precision),
        cache_dir=str(work / f"cache-{precision}"),
        precision=precision,
    )
    start = time.perf_counter()
    manifest = run(cfg, extra)
    cold = time.perf_counter() - start
    # A rerun of the same output with another rank window (on a copy, so the first output stays
    # for ``drift``): the "pairs" checkpoint and the embedding cache are reused; mining onwards
    # runs again.
    again = work / f"{precision}-rerun"
    shutil.copytree(work / precision, again)
    warm_cfg = {"output": str(again), "window_start": 30, "window_end": 60}
    start = time.perf_counter()
    run(cfg.model_copy(update=warm_cfg), extra, overwrite=True)
    warm = time.perf_counter() - start
    return {
        "seconds": cold,
        "rerun_seconds": warm,
        "rows_kept": manifest["counts"]["rows_kept"],
        "texts_encoded": manifest["mining"].get("texts_encoded"),
        "peak_mb": peak_mb(),
    }


def drift(work: Path) -> str:
    """How many filter decisions and negative lists bf16 changes against fp32."""
    import pyarrow.parquet as pq

    def kept(name: str) -> dict[str, list[str]]:
        table = pq.read_table(work / name / "data", columns=["id", "negatives"])
        return dict(zip(table["id"].to_pylist(), table["negatives"].to_pylist(), strict=True))

    def filtered(name: str) -> int:
        folder = work / name / "rejected" / "filter"
        return pq.read_table(folder).num_rows if folder.exists() else 0

    fp32, bf16 = kept("fp32"), kept("bf16")
    judged = len(fp32) + filtered("fp32")
    flipped = len(set(fp32) ^ set(bf16))
    both = set(fp32) & set(bf16)
    changed = sum(fp32[i] != bf16[i] for i in both)
    return (
        f"bf16 vs fp32: {flipped} of {judged} filter decisions changed "
        f"({flipped / max(judged, 1):.2%}); negatives differ in {changed} of {len(both)} "
        f"examples kept by both ({changed / max(len(both), 1):.1%})"
    )


def child(which: str, args: argparse.Namespace, work: Path) -> dict:
    cmd = [sys.executable, __file__, "--data", args.data, "--child", which, "--work", str(work)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    cmd += ["--", *args.beam]
    out = subprocess.run(
        cmd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT))
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--child", choices=("floor", "st", "curate", "curate_bf16"))
    p.add_argument("--work", default=None)
    p.add_argument("beam", nargs="*", help="Beam options for curate, after --")
    args = p.parse_args()
    if args.child:
        rows = load(args.data, args.limit)
        work = Path(args.work)
        fn = {
            "floor": lambda: floor(rows),
            "st": lambda: st(rows),
            "curate": lambda: curate(args.data, args.limit, work, "fp32", args.beam),
            "curate_bf16": lambda: curate(args.data, args.limit, work, "bf16", args.beam),
        }[args.child]
        print(json.dumps(fn()))
        return
    work = Path(tempfile.mkdtemp(prefix="kalm-bench-"))
    results = {}
    for which in ("floor", "st", "curate", "curate_bf16"):
        results[which] = child(which, args, work)
        print(f"{which:>12}: {json.dumps(results[which])}", flush=True)
    f, s, c, b = (results[k]["seconds"] for k in ("floor", "st", "curate", "curate_bf16"))
    print(f"\npairs: {args.limit or 'all'} from {args.data}")
    print(f"{'':<30}{'seconds':>10}{'peak MB':>10}")
    for name, key in (
        ("encode floor", "floor"),
        ("st mine_hard_negatives", "st"),
        ("kalm-data curate (cold)", "curate"),
        ("kalm-data curate bf16 (cold)", "curate_bf16"),
    ):
        print(f"{name:<30}{results[key]['seconds']:>10.1f}{results[key]['peak_mb']:>10.0f}")
    print(f"{'kalm-data curate (re-run)':<30}{results['curate']['rerun_seconds']:>10.1f}")
    print(f"\nst / curate      = {s / c:.2f}x  (> 1: curate faster)")
    print(f"curate / floor   = {c / f:.2f}x  (goal <= 1.15)")
    print(f"st / curate bf16 = {s / b:.2f}x")
    mem = results["curate"]["peak_mb"] / results["st"]["peak_mb"]
    print(f"peak memory (largest process) curate / st = {mem:.2f}")
    print(drift(work))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
