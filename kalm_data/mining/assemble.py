"""Row assembly: a kept ``Ranked`` example becomes one ``TrainingExample`` row.

Contract of ``assemble``: the negatives are the example's given negatives (at most
``num_negatives``, in the example's order, scored against the query, rank -1) followed by
negatives drawn from the rank window (``kalm_data.mining.negatives.draw``, never one of the given
ones) up to ``num_negatives`` in all. ``stats`` counts the draw's skips and shortfalls, the
number of negatives per example, and the given negatives that score like positives (above
``margin`` x the best kept positive, the guard mined negatives get): those are kept, as given,
but counted (``given_above_margin``; the rows show them with rank -1 and their scores).
"""

from __future__ import annotations

from kalm_data.mining.negatives import (
    DrawParams,
    DrawRequest,
    DrawStats,
    Similarity,
    draw,
    vector_similarity,
)
from kalm_data.mining.params import MiningParams
from kalm_data.mining.pool import TaskPool
from kalm_data.mining.rank import Ranked
from kalm_data.mining.scores import dot
from kalm_data.records import TrainingExample


def draw_params(params: MiningParams) -> DrawParams:
    """The drawing settings of ``params``."""
    return DrawParams(
        window=(params.window_start, params.window_end),
        margin=params.margin,
        near_duplicate=params.near_duplicate,
        seed=params.seed,
    )


def assemble(
    ranked: Ranked,
    pool: TaskPool,
    params: MiningParams,
    teacher: str,
    stats: DrawStats,
    similarity: Similarity | None = None,
) -> dict:
    """The ``TrainingExample`` row (as a dict) of a kept example; see module docstring.
    ``similarity`` (default: from ``pool.vectors``) gives candidates' cosines to positives."""
    given = pool.ids(ranked.example.negatives)[: params.num_negatives]
    request = DrawRequest(
        example_id=ranked.example.id,
        n=params.num_negatives - len(given),
        positive_ids=ranked.positive_ids,
        best_positive=ranked.ranks.positive_score,
        exclude=frozenset(given),
    )
    similarity = similarity or vector_similarity(pool.vectors)
    mined = draw(
        ranked.cand_ids, ranked.cand_scores, similarity, request, draw_params(params), stats
    )
    n_neg = len(given) + len(mined)
    stats.counts[n_neg] = stats.counts.get(n_neg, 0) + 1
    negatives = [pool.text(j) for j in given] + [pool.text(j) for j, _, _ in mined]
    given_scores = [float(s) for s in dot(pool.vectors[given], ranked.query_vector)]
    best = ranked.ranks.positive_score
    if best > 0:  # as in ``negatives.draw``: no margin guard against a non-positive score
        stats.given_above_margin += sum(1 for s in given_scores if s > params.margin * best)
    scores = given_scores + [s for _, s, _ in mined]
    ranks = [-1] * len(given) + [r for _, _, r in mined]
    return _row(ranked, teacher, negatives, scores, ranks)


def _row(
    ranked: Ranked, teacher: str, negatives: list[str], scores: list[float], ranks: list[int]
) -> dict:
    """The validated row of ``ranked`` with these negatives (texts, scores, ranks)."""
    e = ranked.example
    return TrainingExample(
        id=e.id,
        task=e.task,
        task_type=e.task_type,
        instruction=e.instruction,
        query=e.query,
        positives=e.positives,
        positive_scores=[float(s) for s in ranked.positive_scores],
        positive_rank=ranked.ranks.positive_rank,
        query_rank=ranked.ranks.query_rank,
        teacher=teacher,
        source_file=e.source_file,
        source_rows=e.source_rows,
        source_ids=e.source_ids,
        negatives=negatives,
        negative_scores=scores,
        negative_ranks=ranks,
        persona_id=e.persona_id,
        generator=e.generator,
    ).model_dump()
