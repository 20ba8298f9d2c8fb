"""The teacher's encoding path vs SentenceTransformer.encode, and the process/thread layout.

    python benchmarks/bench_encode.py               # unique texts of ../shared/data/qa_pairs_en
    python benchmarks/bench_encode.py --limit 2000  # texts of the first 2000 pairs
    python benchmarks/bench_encode.py --limit 2000 --budgets 4096 8192 16384 --no-layout
    python benchmarks/bench_encode.py --sample 3000 --floor --no-layout --repeats 2
    python benchmarks/bench_encode.py --sample 1500 --kernels onednn torch --no-layout

1. Encoder, in one process with the same torch thread count, repeats alternating:
   ``SentenceTransformer.encode(batch_size=32, normalize_embeddings=True)`` (what
   ``mine_hard_negatives`` does) against ``Teacher.encode_counting`` on chunks of
   ``kalm_data.beam.embed.CHUNK`` texts in ``encode_order`` (what the embedding stage does).
   Prints texts/s, wall and CPU seconds, the ratio ours / st (< 1: ours faster) and the largest
   absolute difference between the two sets of vectors.
2. ``--budgets``: ``st.encode`` and our path with each token budget, alternating in every
   repeat; prints each one's median time and ratio to ``st.encode``.
3. ``--kernels onednn torch``: ``st.encode`` and our path with the teacher's Linear layers on
   oneDNN, weights packed once (``kalm_data.embed.onednn``, the default), and on torch's own
   kernels (MKL's sgemm), alternating in every repeat; each one's median time, its ratio to
   ``st.encode``, and the largest gap between the two choices' vectors.
4. ``--floor``: how much of a forward pass the matrix products alone take, on given batch
   shapes. Only the model's dense products (every Linear layer with its bias, and the attention's
   two batched products per layer) are timed, on random inputs of exactly the padded batch
   shapes that ``SentenceTransformer.encode`` makes (length-sorted, 32 texts) and that our
   token-budget batches make; no tokenising, embedding look-up, norm, activation, softmax,
   masking or pooling; with torch's own kernels (MKL), as ``st.encode`` runs them. Prints each
   floor as a share of ``st.encode``'s wall time: what a forward pass on those shapes cannot go
   below with torch's matrix products on this machine (other shapes, such as smaller batches
   that stay in the CPU caches, have their own floor; oneDNN's packed products have a lower
   one).
5. Layout: N worker processes with one torch thread each (each encoding every N-th text, as
   ``default_beam_args`` runs the curate graph) against one process with N threads. Prints the
   wall time of each layout, model loading included, and which is faster.

The machine may be shared: compare only the ratios of one run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "qa_pairs_en" / "pairs.jsonl.gz"


def unique_texts(path: str, limit: int | None, sample: int | None = None) -> list[tuple[str, str]]:
    """(key, text) of the unique normalised texts of the first ``limit`` pairs (or of ``sample``
    pairs drawn with seed 0 from all of them), in encode order."""
    from kalm_data.embed.buckets import encode_order
    from kalm_data.text import normalize, text_key

    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(limit or sys.maxsize), f, strict=False)]
    if sample:
        rows = random.Random(0).sample(rows, min(sample, len(rows)))
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
    ratios, st_walls, diff = [], [], 0.0
    for rep in range(args.repeats):
        ref, st_wall, st_cpu = timed(lambda: st(model, texts))
        (vecs, truncated), our_wall, our_cpu = timed(lambda: ours(teacher, texts))
        diff = max(diff, float(np.abs(vecs - ref).max()))
        ratios.append(our_wall / st_wall)
        st_walls.append(st_wall)
        print(
            f"  repeat {rep}: st.encode {len(texts) / st_wall:7.1f} texts/s "
            f"({st_wall:6.1f} s wall, {st_cpu:6.1f} s cpu) | ours {len(texts) / our_wall:7.1f} "
            f"texts/s ({our_wall:6.1f} s wall, {our_cpu:6.1f} s cpu) | ours/st {ratios[-1]:.3f}",
            flush=True,
        )
    print(f"ours / st.encode wall = {statistics.median(ratios):.3f}x (median of {len(ratios)})")
    print(f"max |ours - st.encode| = {diff:.2e}; texts truncated: {truncated}")
    if args.floor:
        floor(model, teacher, texts, statistics.median(st_walls), args.repeats)
    if args.budgets:
        budgets(model, teacher, texts, args)
    if args.kernels:
        kernels(model, texts, args)


def st_shapes(model, texts: list[str]) -> list[tuple[int, int]]:
    """(texts, padded tokens) of every batch ``st.encode(batch_size=32)`` runs: texts sorted by
    decreasing character length, as sentence-transformers sorts them, then tokenised."""
    ordered = sorted(texts, key=len, reverse=True)
    batches = [ordered[i : i + 32] for i in range(0, len(ordered), 32)]
    return [tuple(model.tokenize(b)["input_ids"].shape) for b in batches]


def our_shapes(teacher, texts: list[str]) -> list[tuple[int, int]]:
    """(texts, padded tokens) of every forward batch of ``ours``."""
    from kalm_data.beam.embed import CHUNK
    from kalm_data.embed.batching import budget_batches

    shapes = []
    for i in range(0, len(texts), CHUNK):
        lengths = [len(r["input_ids"]) for r in teacher.tokenize(texts[i : i + CHUNK])[0]]
        for batch in budget_batches(lengths, teacher.token_budget):
            shapes.append((len(batch), max(lengths[j] for j in batch)))
    return shapes


def dense_products(auto_model, shapes: list[tuple[int, int]]) -> float:
    """Wall seconds of only the dense products of a BERT-like encoder on batches of ``shapes``:
    every Linear but the pooler's (with its bias), and per layer the attention's scores and
    weighted sum as batched products. Inputs are random: the values do not change the work."""
    import torch
    import torch.nn.functional as F

    cfg = auto_model.config
    heads, layers = cfg.num_attention_heads, cfg.num_hidden_layers
    head_dim = cfg.hidden_size // heads
    linears = [
        m
        for name, m in auto_model.named_modules()
        if isinstance(m, torch.nn.Linear) and "pooler" not in name
    ]
    most = max(b * t for b, t in shapes)
    inputs = {k: torch.randn(most, k) for k in {m.in_features for m in linears}}
    qkv = torch.randn(most * cfg.hidden_size)
    start = time.perf_counter()
    with torch.inference_mode():
        for b, t in shapes:
            n = b * t
            for m in linears:
                F.linear(inputs[m.in_features][:n], m.weight, m.bias)
            q = qkv[: n * cfg.hidden_size].view(b * heads, t, head_dim)
            for _ in range(layers):
                torch.bmm(torch.bmm(q, q.transpose(1, 2)), q)
    return time.perf_counter() - start


def floor(model, teacher, texts: list[str], st_wall: float, repeats: int) -> None:
    """The dense-products floor on st's batches and on ours, as shares of ``st_wall``."""
    auto_model = model[0].auto_model
    for name, shapes in (
        ("st.encode's", st_shapes(model, texts)),
        ("our", our_shapes(teacher, texts)),
    ):
        padded = sum(b * t for b, t in shapes)
        seconds = statistics.median(dense_products(auto_model, shapes) for _ in range(repeats))
        print(
            f"floor on {name} {len(shapes)} batches ({padded:,} padded tokens): dense products "
            f"alone {seconds:.1f} s = {seconds / st_wall:.3f}x st.encode's {st_wall:.1f} s",
            flush=True,
        )


def budgets(model, teacher, texts: list[str], args: argparse.Namespace) -> None:
    """Our path at each token budget and ``st.encode``, alternating in every repeat."""

    def at(budget: int):
        def run():
            teacher.token_budget = budget
            return ours(teacher, texts)

        return run

    alternate(model, texts, {f"budget {b}": at(b) for b in args.budgets}, args.repeats)


def kernels(model, texts: list[str], args: argparse.Namespace) -> None:
    """Our path with each choice of Linear kernels (``Teacher(kernels=...)``: oneDNN packed or
    torch's own) and ``st.encode``, alternating in every repeat; the vectors' largest gap."""
    import numpy as np

    from kalm_data.embed.teacher import Teacher, default_teacher

    teachers = {
        k: Teacher(default_teacher(), threads=args.threads, kernels=k) for k in args.kernels
    }
    for name, t in teachers.items():
        if t.kernels != name:
            raise SystemExit(f"--kernels {name}: this torch runs {t.kernels} kernels instead")
    alternate(
        model,
        texts,
        {f"kernels {k}": (lambda t=t: ours(t, texts)) for k, t in teachers.items()},
        args.repeats,
    )
    vectors = [ours(t, texts)[0] for t in teachers.values()]
    gap = max(float(np.abs(v - vectors[0]).max()) for v in vectors)
    print(f"  max |vectors of one kernel choice - another| = {gap:.2e}", flush=True)


def alternate(model, texts: list[str], arms: dict, repeats: int) -> None:
    """``st.encode`` and each of ``arms`` (name -> function encoding ``texts``), in turn in every
    repeat; each one's median time and its ratio to ``st.encode``."""
    seconds: dict[str, list[float]] = {"st.encode": [], **{name: [] for name in arms}}
    for rep in range(repeats):
        seconds["st.encode"].append(timed(lambda: st(model, texts))[1])
        for name, run in arms.items():
            seconds[name].append(timed(run)[1])
        print(f"  repeat {rep}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in seconds.items()))
    st_med = statistics.median(seconds["st.encode"])
    for name, s in seconds.items():
        med = statistics.median(s)
        ratios = [x / y for x, y in zip(s, seconds["st.encode"], strict=True)]
        print(
            f"  {name:>16}: {len(texts) / med:7.1f} texts/s (median {med:.1f} s), "
            f"{statistics.median(ratios):.3f}x st.encode (median of per-repeat ratios; "
            f"{med / st_med:.3f}x of medians)",
            flush=True,
        )


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
    if args.sample:
        cmd += ["--sample", str(args.sample)]
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
    p.add_argument("--sample", type=int, default=None, help="N pairs drawn with seed 0")
    p.add_argument("--floor", action="store_true", help="time the dense products alone")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--budgets", type=int, nargs="*", default=[], help="token budgets to compare")
    p.add_argument(
        "--kernels",
        nargs="*",
        choices=["onednn", "torch"],
        default=[],
        help="Linear kernels to compare",
    )
    p.add_argument("--no-layout", action="store_true", help="skip the process/thread layout")
    p.add_argument("--no-encoder", action="store_true", help="skip ours vs st.encode")
    p.add_argument("--child-layout", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--part", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--parts", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    texts = [t for _, t in unique_texts(args.data, args.limit, args.sample)]
    if args.child_layout:
        layout_child(args, texts)
        return
    if not args.no_encoder:
        encoder(args, texts)
    if not args.no_layout and args.threads > 1:
        layout(args, args.threads)


if __name__ == "__main__":
    main()
