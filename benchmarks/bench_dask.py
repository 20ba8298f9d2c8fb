"""curate on a 2-worker Dask cluster: Beam's Dask runner against ours, in one run.

    python benchmarks/bench_dask.py                  # 2,000 pairs of ../shared/data/qa_pairs_en
    python benchmarks/bench_dask.py --limit 5000

Each arm starts its own ``dask.distributed.LocalCluster`` (2 worker processes, 1 thread each)
and runs ``kalm-data curate`` on it with an empty embedding cache and no checkpoints. The
peer is Beam's ``apache_beam.runners.dask.dask_runner.DaskRunner`` as Beam ships it (the
benchmark switches off ``kalm-data``'s replacement of it for that arm); ours is
``kalm_data.beam.dask_runner.DaskRunner``, which computes each side input once. Prints, per
arm, the wall time, the texts encoded and found in the cache, how many times a worker loaded
the teacher (its workers' ``kalm_data`` log, written to a file in the arm's folder), and whether
the data and rejected rows are identical; then the ratio of wall times (> 1: ours is faster).
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "qa_pairs_en" / "pairs.jsonl.gz"
BEAMS = "apache_beam.runners.dask.dask_runner.DaskRunner"


def rows_of(folder: Path) -> list:
    import pyarrow.parquet as pq

    return [
        (str(f.relative_to(folder)), pq.read_table(f).to_pylist())
        for f in sorted(folder.glob("**/*.parquet"))
        if ".kalm-data" not in f.parts
    ]


def log_to(path: str) -> None:
    """On a Dask worker: ``kalm_data``'s INFO records appended to ``path``."""
    import logging

    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(process)d %(name)s %(message)s"))
    logger = logging.getLogger("kalm_data")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def teacher_loads(log: Path) -> int:
    """Teachers loaded, by the line ``kalm_data.embed.teacher.Teacher`` logs once loaded."""
    lines = log.read_text().splitlines() if log.exists() else []
    return sum(" kalm_data.embed.teacher teacher " in line for line in lines)


def run_arm(runner: str, src: Path, work: Path) -> dict:
    from dask.distributed import Client, LocalCluster

    from kalm_data.cli import main
    from kalm_data.harness import run as harness

    resolve = harness.resolve_runner
    if runner == BEAMS:
        harness.resolve_runner = lambda r: r  # the peer: Beam's runner as shipped
    work.mkdir(parents=True, exist_ok=True)
    out, log = work / "out", work / "workers.log"
    args = ["curate", "--input", str(src), "--output", str(out), "--cache-dir", str(work / "c")]
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
            with Client(cluster) as client:
                client.run(log_to, str(log))
            flags = ["--runner", runner, "--dask_client_address", cluster.scheduler_address]
            started = time.monotonic()
            code = main([*args, "--no-checkpoints", *flags])
            seconds = time.monotonic() - started
    finally:
        harness.resolve_runner = resolve
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "code": code,
        "seconds": seconds,
        "mining": manifest["mining"],
        "rows": rows_of(out),
        "loads": teacher_loads(log),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, default=DEFAULT)
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--work", type=Path, default=None, help="keep the outputs here")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-dask-"))
    src = work / "pairs.jsonl.gz"
    work.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.input, "rt", encoding="utf-8") as f, gzip.open(src, "wt") as out:
        for i, line in enumerate(f):
            if i >= args.limit:
                break
            out.write(line)
    arms = {"beam": BEAMS, "ours": "kalm_data.beam.dask_runner.DaskRunner"}
    results = {name: run_arm(runner, src, work / name) for name, runner in arms.items()}
    print(f"\n{args.limit} pairs, 2-worker LocalCluster, cold cache")
    print(f"{'runner':<8}{'wall s':>9}{'encoded':>10}{'from cache':>12}{'teacher loads':>15}")
    for name, r in results.items():
        m = r["mining"]
        encoded, cached = m.get("texts_encoded", 0), m.get("texts_from_cache", 0)
        print(f"{name:<8}{r['seconds']:>9.1f}{encoded:>10,}{cached:>12,}{r['loads']:>15}")
    same = results["beam"]["rows"] == results["ours"]["rows"]
    print(f"identical data and rejected rows: {same}")
    print(f"beam / ours wall time: {results['beam']['seconds'] / results['ours']['seconds']:.2f}x")


if __name__ == "__main__":
    main()
