"""Mine and filter one task: its examples and their teacher embeddings in, kept rows and
rejections out. Pure: no Beam, no I/O.

``mine_task`` composes four steps, each a module of its own:

1. ``pool.build_pool``: the task's unique texts (positives, given negatives, shared corpus) in
   key order, the examples in id order; the output does not depend on input order.
2. ``rank.rank_task``: per example, its candidates with its own texts removed, the best
   positive's score and exact rank, and the query's rank among the task's queries.
3. ``consistency.judge``: each positive judged on its own; rows whose positives all fail are
   rejected (stage ``filter``, reason ``inconsistent_ranking``), the example kept, narrowed to
   its passing positives, while one passes.
4. ``assemble.assemble``: given negatives plus negatives drawn from the rank window, as a
   ``TrainingExample`` dict.

Every source row comes out exactly once: in a ``TrainingExample``'s ``source_rows`` or as a
``RejectedRecord`` (``rows`` 1 per row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kalm_data.mining.assemble import assemble
from kalm_data.mining.consistency import judge
from kalm_data.mining.negatives import DrawStats
from kalm_data.mining.params import MiningParams
from kalm_data.mining.pool import build_pool
from kalm_data.mining.rank import Ranked, rank_task
from kalm_data.records import Example, RejectedRecord


@dataclass
class TaskResult:
    """One task's outcome: kept rows (in example id order), rejections, drawing counters,
    and the failing positives removed from kept examples."""

    kept: list[dict]
    rejected: list[RejectedRecord]
    stats: DrawStats
    positives_dropped: int = 0


def mine_task(
    examples: list[Example],
    vectors: dict[str, np.ndarray],
    corpus: list[str],
    params: MiningParams,
    teacher: str,
) -> TaskResult:
    """See module docstring. ``vectors`` maps ``text_key`` of every text involved to its vector."""
    pool = build_pool(examples, vectors, corpus)
    result = TaskResult([], [], DrawStats())
    for ranked in rank_task(pool, params):
        for verdict in judge(ranked, params):
            if isinstance(verdict, Ranked):
                result.positives_dropped += verdict.dropped
                result.kept.append(assemble(verdict, pool, params, teacher, result.stats))
            else:
                result.rejected.append(verdict)
    return result
