"""The teacher's encoding path vs SentenceTransformer.encode, and the process/thread layout.

    python benchmarks/bench_encode.py               # unique texts of ../shared/data/qa_pairs_en
    python benchmarks/bench_encode.py --limit 2000  # texts of the first 2000 pairs
    python benchmarks/bench_encode.py --limit 2000 --budgets 4096 8192 16384 --no-layout

1. Encoder, in one process with the same torch thread count, repeats alternating:
   ``SentenceTransformer.encode(batch_size=32, normalize_embeddings=True)`` (what
   ``mine_hard_negatives`` does) against ``Teacher.encode_counting`` on chunks of
   ``kalm_data.beam.embed.CHUNK`` texts in ``encode_order`` (what the embedding stage does).
   Prints texts/s, wall and CPU seconds, the ratio ours / st (< 1: ours faster) and the largest
   absolute difference between the two sets of vectors.
2. ``--budgets``: our path with each token budget, alternating.
3. Layout: N worker processes with one torch thread each (each encoding every N-th text, as
   ``default_beam_args`` runs the curate graph) against one process with N threads. Prints the
   wall time of each layout, model loading included, and which is faster.

The machine may be shared: compare only the ratios of one run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "qa_pairs_en" / "pairs.jsonl.gz"


def unique_texts(path: str, limit: int | None) -> list[tuple[str, str]]:
    """(key, text) of the unique normalised texts of the first ``limit`` pairs, in encode order."""
    from kalm_data.embed.buckets import encode_order
    from kalm_data.text import normalize, text_key

    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(limit or sys.maxsize), f, strict=False)]
    texts = {normalize(t) for r in rows for t in (r["query"], r["positive"])}
    return encode_order([(text_key(t), t) for t in texts])


def ours(teacher, texts: list[str]) -> tuple:
    """The embedding stage's path: encode_counting on CHUNK-sized slices of the ordered texts."""
    import numpy as np

    from kalm_data.beam.embed import CHUNK

    parts, truncated = [], 0
    for i in range(0, len(texts), CHUNK):
        vectors, n = teacher.encode_counting(texts[i : i + CHUNK])
        parts.append(vectors)
        truncated += n
    return np.concatenate(parts), truncated


def st(model, texts: list[str]):
    """``SentenceTransformer.encode`` as ``mine_hard_negatives`` calls it."""
    return model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def encoder(args: argparse.Namespace, texts: list[str]) -> None:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from kalm_data.embed.teacher import Teacher, default_teacher

    torch.set_num_threads(args.threads)
    teacher = Teacher(default_teacher(), threads=args.threads)
    model = SentenceTransformer(default_teacher(), device="cpu")
    print(f"texts: {len(texts)}, torch threads: {args.threads}, budget {teacher.token_budget}")
    ratios, diff = [], 0.0
    for rep in range(args.repeats):
        ref, st_wall, st_cpu = timed(lambda: st(model, texts))
        (vecs, truncated), our_wall, our_cpu = timed(lambda: ours(teacher, texts))
        diff = max(diff, float(np.abs(vecs - ref).max()))
        ratios.append(our_wall / st_wall)
        print(
            f"  repeat {rep}: st.encode {len(texts) / st_wall:7.1f} texts/s "
            f"({st_wall:6.1f} s wall, {st_cpu:6.1f} s cpu) | ours {len(texts) / our_wall:7.1f} "
            f"texts/s ({our_wall:6.1f} s wall, {our_cpu:6.1f} s cpu) | ours/st {ratios[-1]:.3f}",
            flush=True,
        )
    print(f"ours / st.encode wall = {statistics.median(ratios):.3f}x (median of {len(ratios)})")
    print(f"max |ours - st.encode| = {diff:.2e}; texts truncated: {truncated}")
    if args.budgets:
        budgets(teacher, texts, args)


def budgets(teacher, texts: list[str], args: argparse.Namespace) -> None:
    seconds: dict[int, list[float]] = {b: [] for b in args.budgets}
    for _ in range(args.repeats):
        for budget in args.budgets:
            teacher.token_budget = budget
            seconds[budget].append(timed(lambda: ours(teacher, texts))[1])
    for budget, s in seconds.items():
        med = statistics.median(s)
        print(f"  budget {budget:>6}: {len(texts) / med:7.1f} texts/s (median {med:.1f} s)")


def layout_child(args: argparse.Namespace, texts: list[str]) -> None:
    """One worker: load the teacher with ``--threads`` threads, encode every n-th text."""
    from kalm_data.embed.teacher import Teacher, default_teacher

    start = time.perf_counter()
    teacher = Teacher(default_teacher(), threads=args.threads)
    loaded = time.perf_counter()
    ours(teacher, texts[args.part :: args.parts])
    end = time.perf_counter()
    print(json.dumps({"load": loaded - start, "encode": end - loaded}))


def run_layout(args: argparse.Namespace, procs: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--data", args.data, "--child-layout"]
    cmd += ["--threads", str(threads), "--parts", str(procs)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    children = [
        subprocess.Popen([*cmd, "--part", str(i)], stdout=subprocess.PIPE, text=True, env=env)
        for i in range(procs)
    ]
    outs = [json.loads(c.communicate()[0].strip().splitlines()[-1]) for c in children]
    if any(c.returncode for c in children):
        raise SystemExit("a layout child failed")
    return {"wall": time.perf_counter() - start, "encode": max(o["encode"] for o in outs)}


def layout(args: argparse.Namespace, n: int) -> None:
    shapes = {f"{n} processes x 1 thread": (n, 1), f"1 process x {n} threads": (1, n)}
    walls: dict[str, list[float]] = {name: [] for name in shapes}
    for rep in range(args.repeats):
        for name, (procs, threads) in shapes.items():
            r = run_layout(args, procs, threads)
            walls[name].append(r["wall"])
            print(f"  repeat {rep}: {name:<24} {r['wall']:6.1f} s ({r['encode']:.1f} s encoding)")
    med = {name: statistics.median(w) for name, w in walls.items()}
    (multi, single) = med.values()
    best = min(med, key=med.get)
    print(f"layout: {single / multi:.3f}x = (1 x {n} threads) / ({n} x 1 thread); faster: {best}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT))
    p.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--budgets", type=int, nargs="*", default=[], help="token budgets to compare")
    p.add_argument("--no-layout", action="store_true", help="skip the process/thread layout")
    p.add_argument("--no-encoder", action="store_true", help="skip ours vs st.encode")
    p.add_argument("--child-layout", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--part", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--parts", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    texts = [t for _, t in unique_texts(args.data, args.limit)]
    if args.child_layout:
        layout_child(args, texts)
        return
    if not args.no_encoder:
        encoder(args, texts)
    if not args.no_layout and args.threads > 1:
        layout(args, args.threads)


if __name__ == "__main__":
    main()
