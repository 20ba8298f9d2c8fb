"""Which rows does curation change, and what does the trainer then pick? (no model needed)

    python benchmarks/curation_rows.py /tmp/cp/raw-shards /tmp/cp/cur/default [...] --seeds 10

Contract: for each folder of task shards it prints the rows the trainer reads
(``kalm_data.train.data.load_rows``), their positives, rows with more than one positive, the
share of medical (MedQuAD) and GHR rows, and, over ``--seeds`` seeds, the mean and range of the
medical and GHR shares among the rows ``SemiHomogeneousBatchSampler`` picks in ``--steps``
batches of ``--batch-size`` (ratio 0, as ``curation_pays.py`` trains). The picked share is what
the model actually trains on; its spread across seeds is the sampling noise every arm carries.
``same-seed overlap`` is the share of the first folder's picked queries (same seed) that the
folder's picks also hold: near the random ~7%, "same seed" does not pair two arms at all.
"""

from __future__ import annotations

import argparse
import statistics


def picked_shares(rows, batch_size: int, steps: int, seed: int) -> tuple[float, float, set]:
    """(medical share, GHR share, picked queries) of ``steps`` batches with ``seed``."""
    from kalm_data.train.sampler import SemiHomogeneousBatchSampler

    sampler = SemiHomogeneousBatchSampler(rows, batch_size, 0, 0.0, seed)
    picked = [rows[p.row] for _ in range(steps) for p in sampler.next_batch()]
    medical = sum(r.task.startswith("medquad") for r in picked) / len(picked)
    ghr = sum("GHR" in r.task for r in picked) / len(picked)
    return medical, ghr, {r.query for r in picked}


def main(argv: list[str] | None = None) -> None:
    from kalm_data.train.data import load_rows

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("folders", nargs="+")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    args = p.parse_args(argv)
    head = f"{'folder':28s} {'rows':>6s} {'pos':>6s} {'multi':>5s} {'med%':>5s} {'GHR%':>5s}"
    print(
        head + f" {'picked med% mean [min,max]':>27s} {'picked GHR% mean [min,max]':>27s}"
        f" {'same-seed overlap%':>18s}"
    )
    first: list[set] = []
    for folder in args.folders:
        rows = load_rows([folder])
        shares = [picked_shares(rows, args.batch_size, args.steps, s) for s in range(args.seeds)]
        cells = []
        for k in (0, 1):
            v = [100 * s[k] for s in shares]
            cells.append(f"{statistics.mean(v):5.1f} [{min(v):4.1f},{max(v):4.1f}]")
        queries = [s[2] for s in shares]
        first = first or queries
        overlap = [100 * len(a & b) / len(a) for a, b in zip(queries, first, strict=True)]
        n = len(rows)
        med = 100 * sum(r.task.startswith("medquad") for r in rows) / n
        ghr = 100 * sum("GHR" in r.task for r in rows) / n
        multi = sum(len(r.positives) > 1 for r in rows)
        pos = sum(len(r.positives) for r in rows)
        print(
            f"{folder[-28:]:28s} {n:6d} {pos:6d} {multi:5d} {med:5.1f} {ghr:5.1f} "
            f"{cells[0]:>27s} {cells[1]:>27s} {statistics.mean(overlap):18.1f}"
        )


if __name__ == "__main__":
    main()
