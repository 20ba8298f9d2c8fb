"""The teacher loaded with transformers alone (``kalm_data.embed.lean_model``) against the same
teacher loaded with sentence-transformers: memory, start-up time, and the same bits.

    python benchmarks/bench_teacher_memory.py                 # 2,000 pairs of qa_pairs_en
    python benchmarks/bench_teacher_memory.py --limit 5000 --repeats 3

Each arm runs in a fresh process (alternating, ``--repeats`` times each), as a worker or the
teacher's child process would: import, load the model, encode the unique texts of the first
``--limit`` pairs in the embedding stage's order and chunks. Prints per arm the median
resident memory after loading and at the end of encoding (peak, ``VmHWM``), the load and
encode seconds, the ratio lean / sentence-transformers, and whether the two arms' vectors are
bit-identical. The machine may be shared: compare only the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_encode import DEFAULT, ours, unique_texts  # noqa: E402

ARMS = {"sentence-transformers": False, "lean": True}


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(args: argparse.Namespace) -> None:
    """One arm in this process: prints a JSON line and saves the vectors to ``--save``."""
    import numpy as np

    start = time.perf_counter()
    from kalm_data.embed.teacher import Teacher, default_teacher

    teacher = Teacher(default_teacher(), threads=args.threads, lean=args.lean)
    loaded = time.perf_counter()
    after_load = _rss_mb("VmRSS")
    texts = [t for _, t in unique_texts(args.input, args.limit)]
    t0 = time.perf_counter()
    vectors, _ = ours(teacher, texts)
    done = time.perf_counter()
    np.save(args.save, vectors)
    result = {
        "load_s": loaded - start,
        "encode_s": done - t0,
        "rss_after_load_mb": after_load,
        "peak_mb": _rss_mb("VmHWM"),
        "texts": len(texts),
        "sentence_transformers_imported": "sentence_transformers" in sys.modules,
    }
    print(json.dumps(result), flush=True)


def run_arm(args: argparse.Namespace, lean: bool, save: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", "--input", args.input, "--save", str(save)]
    cmd += ["--limit", str(args.limit), "--threads", str(args.threads)]
    cmd += ["--lean"] if lean else []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default=str(DEFAULT))
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lean", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    import numpy as np

    results: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory() as tmp:
        saved = {}
        for i in range(args.repeats):
            for arm, lean in ARMS.items():
                saved[arm] = Path(tmp) / f"{arm}-{i}.npy"
                results[arm].append(run_arm(args, lean, saved[arm]))
                r = results[arm][-1]
                print(
                    f"{arm:22s} run {i}: load {r['load_s']:.1f} s, encode {r['encode_s']:.1f} s, "
                    f"{r['rss_after_load_mb']:.0f} MB loaded, {r['peak_mb']:.0f} MB peak, "
                    f"sentence_transformers imported: {r['sentence_transformers_imported']}",
                    flush=True,
                )
        same = np.array_equal(*(np.load(p) for p in saved.values()))
    texts = results["lean"][0]["texts"]
    print(f"\n{texts} unique texts, {args.threads} torch threads, median of {args.repeats}:")
    print(f"{'':22s} {'load s':>8s} {'encode s':>9s} {'loaded MB':>10s} {'peak MB':>8s}")
    med = {
        arm: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k.endswith(("_s", "_mb"))}
        for arm, rs in results.items()
    }
    for arm, m in med.items():
        print(
            f"{arm:22s} {m['load_s']:8.1f} {m['encode_s']:9.1f} "
            f"{m['rss_after_load_mb']:10.0f} {m['peak_mb']:8.0f}"
        )
    st, lean = med["sentence-transformers"], med["lean"]
    print(
        f"lean / sentence-transformers: load {lean['load_s'] / st['load_s']:.2f}x, "
        f"encode {lean['encode_s'] / st['encode_s']:.2f}x, "
        f"loaded memory {lean['rss_after_load_mb'] / st['rss_after_load_mb']:.2f}x, "
        f"peak {lean['peak_mb'] / st['peak_mb']:.2f}x; vectors bit-identical: {same}"
    )


if __name__ == "__main__":
    main()
