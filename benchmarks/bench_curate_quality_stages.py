"""What near-duplicate removal and decontamination add to a ``curate`` run.

    python benchmarks/bench_curate_quality_stages.py                # 2,000 qa_pairs_en pairs
    python benchmarks/bench_curate_quality_stages.py --limit 5000 --eval-set DIR

Runs ``kalm-data curate`` twice on the same subsample of ../shared/data/qa_pairs_en (rows spread
over the whole file: both MedQuAD and Disfl-QA), each in its own process with its own empty
embedding cache: once with ``--no-near-dup`` and no evaluation set, once with near-duplicate
removal and ``--decontaminate`` against SciFact (BEIR, 5,183 documents + 1,109 queries, from
../shared/data/scifact); ``--repeats`` times, alternating, keeping the best of each. Prints the
wall and CPU seconds (user + system of the process and its Beam workers: steadier than wall
time on a shared machine), the added time in % (goal: < 10%) and what the two stages rejected
(from the manifest).
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def subsample(limit: int, path: Path) -> Path:
    with gzip.open(SHARED / "qa_pairs_en" / "pairs.jsonl.gz", "rt", encoding="utf-8") as f:
        lines = f.readlines()
    step = max(1, len(lines) // limit)
    path.write_text("".join(lines[::step][:limit]), encoding="utf-8")
    return path


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def curate(src: Path, out: Path, cache: Path, extra: list[str]) -> tuple[float, float, dict]:
    """Wall and CPU seconds and the manifest of one ``kalm-data curate`` run in a fresh
    process with an empty embedding cache."""
    cmd = [sys.executable, "-m", "kalm_data.cli", "curate", "--input", str(src)]
    cmd += ["--output", str(out), "--cache-dir", str(cache), "--overwrite", "--no-checkpoints"]
    cmd += extra
    shutil.rmtree(cache, ignore_errors=True)
    start, cpu = time.perf_counter(), _cpu_children()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds, cpu = time.perf_counter() - start, _cpu_children() - cpu
    return seconds, cpu, json.loads((out / "manifest.json").read_text())


def _added(base: float, quality: float) -> str:
    return f"{100 * (quality - base) / base:+.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=2000, help="pairs in the subsample")
    parser.add_argument("--eval-set", default=str(SHARED / "scifact"), help="--decontaminate")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternating")
    args = parser.parse_args()
    base, qual = [], []
    quality = ["--near-dup", "--decontaminate", args.eval_set]
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        root = Path(tmp)
        src = subsample(args.limit, root / "pairs.jsonl")
        for _ in range(args.repeats):
            base.append(curate(src, root / "base", root / "cache", ["--no-near-dup"]))
            qual.append(curate(src, root / "quality", root / "cache", quality))
    (base_s, base_cpu), (qual_s, qual_cpu) = (
        (min(r[0] for r in runs), min(r[1] for r in runs)) for runs in (base, qual)
    )
    manifest = qual[-1][2]
    rejected, timings = manifest["counts"]["rejected"], manifest.get("timings", {})
    print(
        f"pairs: {args.limit}, evaluation set: {Path(args.eval_set).name}, best of {args.repeats}"
    )
    print(f"{'':42} {'wall s':>8} {'cpu s':>8}")
    print(f"{'curate without near-dup/decontamination':42} {base_s:8.1f} {base_cpu:8.1f}")
    print(f"{'curate with near-dup + decontamination':42} {qual_s:8.1f} {qual_cpu:8.1f}")
    print(f"{'added (goal < 10%)':42} {_added(base_s, qual_s):>8} {_added(base_cpu, qual_cpu):>8}")
    for stage in ("neardup", "decontaminate"):
        seconds = timings.get(stage)
        shown = f", progress timing {seconds:.1f} s" if seconds is not None else ""
        print(f"  {stage}: rejected {rejected.get(stage, {})}{shown}")


if __name__ == "__main__":
    main()
