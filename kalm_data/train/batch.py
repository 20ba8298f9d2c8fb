"""Turn sampler picks into the texts and targets of one device's batch.

Contract: ``make_batch(rows, picks, cfg)`` gives ``B = len(picks)`` queries and the passages of
their groups laid end to end: each group is 1 positive then up to ``num_negatives`` hard
negatives (a row with fewer negatives simply has a smaller group: no random padding, which in
KaLM's code could insert a copy of the row's own positive). ``labels[i]`` is the index of query
i's positive among the passages; ``groups[i]`` lists its group's passage indices (-1 padded);
``teacher[i]`` the curation teacher's scores for the same passages (NaN when unknown).

Queries carry the instruction prefix (KaLM: ``Instruct: {task}\\nQuery: {query}``, with the row's
``instruction`` or else its task name); passages never do, nor do symmetric task types
(``sts``, ``bitext``) unless ``instruct_symmetric`` is set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kalm_data.train.config import TrainConfig
from kalm_data.train.data import TrainRow
from kalm_data.train.sampler import Pick


@dataclass
class Batch:
    """The texts of one device's batch and the targets of the loss (plain lists, no torch)."""

    queries: list[str]
    passages: list[str]
    labels: list[int]
    groups: list[list[int]]
    teacher: list[list[float]]


def query_prefix(row: TrainRow, cfg: TrainConfig) -> str:
    """The instruction prefix of ``row``'s query; "" for symmetric task types."""
    if row.task_type in cfg.symmetric_task_types and not cfg.instruct_symmetric:
        return ""
    return cfg.query_prompt(row.instruction or row.task)


def format_query(row: TrainRow, cfg: TrainConfig) -> str:
    """The query as the model sees it."""
    return query_prefix(row, cfg) + row.query


def _score(scores: list[float] | None, i: int) -> float:
    return float(scores[i]) if scores is not None else math.nan


def make_batch(rows: list[TrainRow], picks: list[Pick], cfg: TrainConfig) -> Batch:
    """The batch of ``picks`` (one device's share of a global batch)."""
    queries, passages, labels, groups, teacher = [], [], [], [], []
    width = 1 + max(len(p.negatives) for p in picks)
    for pick in picks:
        row = rows[pick.row]
        queries.append(format_query(row, cfg))
        start = len(passages)
        labels.append(start)
        passages.append(row.positives[pick.positive])
        passages.extend(row.negatives[j] for j in pick.negatives)
        size = len(passages) - start
        groups.append(list(range(start, start + size)) + [-1] * (width - size))
        scores = [_score(row.positive_scores, pick.positive)]
        scores += [_score(row.negative_scores, j) for j in pick.negatives]
        teacher.append(scores + [math.nan] * (width - size))
    return Batch(queries, passages, labels, groups, teacher)
