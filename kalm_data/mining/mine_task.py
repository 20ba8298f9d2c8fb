"""Mine and filter one task: its examples and their teacher embeddings in, kept rows and
rejections out. Pure: no Beam, no I/O.

Contract of ``mine_task``:
- The pool is the task's positives and given negatives plus the shared corpus, as unique texts
  in key order; examples are processed in id order. The output does not depend on input order.
- For each example: the best positive's score and rank for its query (exact, even beyond the
  searched depth), the query's rank among the task's queries for the best positive, the
  consistency verdict (``kalm_data.mining.consistency``), and for kept examples the given
  negatives followed by negatives drawn from the rank window (``kalm_data.mining.negatives``).
- Every example comes out exactly once: as a ``TrainingExample`` dict or a ``RejectedRecord``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from kalm_data import reasons
from kalm_data.config import CurateConfig
from kalm_data.mining import consistency
from kalm_data.mining.negatives import DrawStats, draw
from kalm_data.mining.search import build_index, search
from kalm_data.records import Example, RejectedRecord, TrainingExample
from kalm_data.text import text_key


@dataclass
class TaskResult:
    kept: list[dict]
    rejected: list[RejectedRecord]
    stats: DrawStats


def dot(vectors: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(n, dim) x (dim,) -> (n,) without BLAS: the same bits whatever the thread count, so
    scores, ranks and ties come out the same on every runner and worker layout."""
    return np.einsum("nd,d->n", vectors, q)


def _rescore(pool: np.ndarray, ids: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's candidates for one query, re-scored with ``dot`` and sorted by (score desc, id)."""
    ids = ids[ids >= 0]
    scores = dot(pool[ids], q)
    order = np.lexsort((ids, -scores))
    return scores[order], ids[order]


def _positive_rank(
    q: np.ndarray,
    best: float,
    cand_scores: np.ndarray,
    pool: np.ndarray,
    own: set[int],
    searched_all: bool,
) -> int:
    """Candidates scoring above the best positive; exact beyond the depth via one dot product."""
    rank = int((cand_scores > best).sum())
    if rank < len(cand_scores) or searched_all:
        return rank
    above = dot(pool, q) > best  # (n_pool,)
    return int(above.sum()) - sum(1 for j in own if above[j])


def _query_ranks(queries: np.ndarray, best_pos: np.ndarray, query_k: int) -> list[int | None]:
    """Rank of each example's own query among all the task's queries, searched with its best
    positive; None when it is not within the first ``query_k + 1``."""
    index = build_index(queries)
    scores, ids = search(index, best_pos, query_k + 1)
    out: list[int | None] = []
    for i, row in enumerate(ids):
        if i not in row:
            out.append(None)
            continue
        others = row[(row >= 0) & (row != i)]
        own = dot(queries[i : i + 1], best_pos[i])[0]
        out.append(int((dot(queries[others], best_pos[i]) > own).sum()))
    return out


def mine_task(
    examples: list[Example],
    vectors: dict[str, np.ndarray],
    corpus: list[str],
    cfg: CurateConfig,
    teacher: str,
) -> TaskResult:
    """See module docstring. ``vectors`` maps ``text_key`` of every text involved to its vector."""
    examples = sorted(examples, key=lambda e: e.id)
    texts = {text_key(t): t for e in examples for t in (*e.positives, *e.negatives)}
    texts.update((text_key(t), t) for t in corpus)
    keys = sorted(texts)
    where = {k: i for i, k in enumerate(keys)}
    pool = np.stack([vectors[k] for k in keys]).astype(np.float32)  # (n_pool, dim)
    queries = np.stack([vectors[text_key(e.query)] for e in examples])  # (n_ex, dim)

    max_pos = max(len(e.positives) for e in examples)
    index = build_index(pool, cfg.index, cfg.ivf_nlist, cfg.ivf_nprobe)
    depth = cfg.search_depth + max_pos + 1
    _, ids = search(index, queries, depth)

    best_pos = np.empty_like(queries)
    per_example = []
    for i, e in enumerate(examples):
        pos_ids = [where[text_key(p)] for p in e.positives]
        pos_scores = dot(pool[pos_ids], queries[i])  # (n_positives,)
        best = int(np.argmax(pos_scores))
        best_pos[i] = pool[pos_ids[best]]
        own = set(pos_ids)
        if text_key(e.query) in where:
            own.add(where[text_key(e.query)])
        per_example.append((pos_ids, pos_scores, own))

    query_ranks = _query_ranks(queries, best_pos, cfg.filter_query_k)
    result = TaskResult([], [], DrawStats())
    for i, e in enumerate(examples):
        pos_ids, pos_scores, own = per_example[i]
        cand_scores, cand_ids = _rescore(pool, ids[i], queries[i])
        mask = ~np.isin(cand_ids, list(own))
        cand_ids, cand_scores = cand_ids[mask], cand_scores[mask]
        best = float(pos_scores.max())
        k = cfg.filter_k
        ranks = consistency.Ranks(
            _positive_rank(queries[i], best, cand_scores, pool, own, depth >= len(pool)),
            query_ranks[i],
            best,
            float(cand_scores[k - 1]) if len(cand_scores) >= k else None,
        )
        rule = (cfg.filter_rule, ranks, k, cfg.filter_query_k, cfg.filter_margin)
        if not consistency.keep(*rule):
            detail = consistency.explain(*rule)
            result.rejected.append(_rejection(e, ranks, detail, pos_scores))
            continue
        given = [where[text_key(n)] for n in e.negatives][: cfg.num_negatives]
        mined = draw(
            cand_ids,
            cand_scores,
            pool,
            pos_ids,
            best,
            set(given),
            cfg.num_negatives - len(given),
            (cfg.window_start, cfg.window_end),
            cfg.margin,
            cfg.near_duplicate,
            cfg.seed,
            e.id,
            result.stats,
        )
        n_neg = len(given) + len(mined)
        result.stats.counts[n_neg] = result.stats.counts.get(n_neg, 0) + 1
        result.kept.append(
            TrainingExample(
                **{
                    "id": e.id,
                    "task": e.task,
                    "task_type": e.task_type,
                    "instruction": e.instruction,
                    "query": e.query,
                    "positives": e.positives,
                    "negatives": [texts[keys[j]] for j in given]
                    + [texts[keys[j]] for j, _, _ in mined],
                    "positive_scores": [float(s) for s in pos_scores],
                    "negative_scores": [float(s) for s in dot(pool[given], queries[i])]
                    + [s for _, s, _ in mined],
                    "negative_ranks": [-1] * len(given) + [r for _, _, r in mined],
                    "positive_rank": ranks.positive_rank,
                    "query_rank": ranks.query_rank,
                    "teacher": teacher,
                    "source_file": e.source_file,
                    "source_rows": e.source_rows,
                    "source_ids": e.source_ids,
                }
            ).model_dump()
        )
    return result


def _rejection(
    e: Example, ranks: consistency.Ranks, detail: str, pos_scores: np.ndarray
) -> RejectedRecord:
    record = e.model_dump()
    record.update(
        positive_scores=[float(s) for s in pos_scores],
        positive_rank=ranks.positive_rank,
        query_rank=ranks.query_rank,
        score_at_k=ranks.score_at_k,
    )
    return RejectedRecord(
        id=e.id,
        task=e.task,
        stage=reasons.FILTER,
        reason=reasons.INCONSISTENT_RANKING,
        detail=f"{e.source_file}:{e.source_rows[0]}: {detail}",
        source_file=e.source_file,
        source_row=e.source_rows[0],
        rows=len(e.source_rows),
        record=json.dumps(record, ensure_ascii=False),
    )
