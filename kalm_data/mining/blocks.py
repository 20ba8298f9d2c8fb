"""Mining one task on many workers: its pool cut into key-range shards, its examples into blocks.

A task too large for one worker is mined as ``n`` x ``n`` pieces of work (the Beam wiring is
``kalm_data.beam.mine_blocks``); each piece holds one pool shard and two blocks of queries, each
merge holds one block's findings, so no worker holds the task's pool or all its examples.

Contract (pure, no I/O):
- ``shard_of(key, n)`` puts a pool text in one of ``n`` shards by key range, so that (shard, key)
  order is key order, the order of pool ids. ``block_of(example_id, n)`` puts an example in one
  of ``n`` blocks by a hash of its id.
- ``shard_findings`` is what one pool shard and one block of queries (``theirs``) tell a block of
  examples (``Findings``): per example, the shard's first ``depth`` texts by (``dot`` desc, key
  asc) with their cosines to each positive; per positive, how many of the shard's texts, the
  example's own left out, score above it (from that list when it reaches below the positive,
  else by one exact pass over the shard); per positive, the first ``filter_query_k + 1`` of
  ``theirs``'s queries searched with it, by (``dot`` desc, example id asc).
- ``merge_block`` merges every shard's findings for a block into the ``Ranked`` records that
  ``kalm_data.mining.rank.rank_task`` gives on the whole task: with ``flat``, each shard list is
  exact (``sharded.top_k``), so the merge is the exact top-k; a positive's rank is the sum of
  the shards' counts, the query rank a merge of exact lists. Rows assembled from them (with
  ``BlockPool.similarity``) carry the drawn negatives as text keys, replaced by their texts
  afterwards, since the merge holds no candidate's text.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from kalm_data.mining.consistency import Ranks
from kalm_data.mining.negatives import Similarity
from kalm_data.mining.params import MiningParams
from kalm_data.mining.pool import TaskPool
from kalm_data.mining.rank import Ranked
from kalm_data.mining.scores import dot
from kalm_data.mining.search import IndexSpec, index_for
from kalm_data.mining.sharded import top_k
from kalm_data.records import Example
from kalm_data.text import hash_bucket, key_bucket, text_key


def shard_of(key: str, n: int) -> int:
    """The pool shard of a text key: a key range, so shard order follows key order."""
    return key_bucket(key, n)


def block_of(example_id: str, n: int) -> int:
    """The block of an example: by a hash of its id."""
    return hash_bucket(example_id, n)


@dataclass(frozen=True)
class Findings:
    """One pool shard's and one query block's findings for a block's examples (id order)."""

    cand_scores: list[np.ndarray]  # per example: (<= depth,) float32, by (score desc, key asc)
    cand_keys: list[np.ndarray]  # per example: (<= depth,) text keys, ASCII bytes ("S32")
    cand_sims: list[np.ndarray]  # per example: (<= depth, n_positives) cosines to positives
    above: list[np.ndarray]  # per example: (n_positives,) shard texts scoring above each
    query_scores: list[np.ndarray]  # per example: (n_positives, <= query_k + 1)
    query_ids: list[np.ndarray]  # per example: (n_positives, <= query_k + 1) example ids


@dataclass(frozen=True)
class Probe:
    """What a findings piece needs of an example: its id and its texts' keys (the texts stay
    with the block's merge; a piece reads vectors by key)."""

    id: str
    query: str  # key
    positives: tuple[str, ...]  # keys, in the example's order

    @classmethod
    def of(cls, example: Example) -> Probe:
        return cls(example.id, text_key(example.query), tuple(map(text_key, example.positives)))

    @property
    def own(self) -> set[str]:
        """Keys the example never ranks against: its positives and its query."""
        return {*self.positives, self.query}


def shard_findings(
    probes: list[Probe],
    shard_keys: list[str],
    shard_vectors: np.ndarray,
    theirs: tuple[list[str], np.ndarray],
    vectors: dict[str, np.ndarray],
    params: MiningParams,
    depth: int,
    spec: IndexSpec,
) -> Findings:
    """See module docstring. ``probes``: the block's examples in id order; ``shard_keys``
    sorted, ``shard_vectors`` aligned; ``theirs`` = (example ids in order, their query
    vectors); ``vectors`` holds the probes' queries and positives by key."""
    queries = np.stack([vectors[e.query] for e in probes])
    if shard_keys:
        index = index_for(shard_vectors, spec)
        scores, local = top_k(index, shard_vectors, queries, depth, spec.kind == "flat")
    else:
        scores, local = np.zeros((len(probes), 0), np.float32), np.zeros((len(probes), 0))
    keys = np.array(shard_keys, dtype="S32")  # a quarter of "U32": findings are shuffled
    out = Findings([], [], [], [], [], [])
    for e, q, row_scores, row in zip(probes, queries, scores, local, strict=True):
        row = row[row >= 0].astype(np.int64)
        row_scores = row_scores[: len(row)]
        positives = np.stack([vectors[p] for p in e.positives])
        own = [j for j in (_find(shard_keys, k) for k in e.own) if j is not None]
        out.cand_scores.append(row_scores)
        out.cand_keys.append(keys[row])
        out.cand_sims.append(
            np.stack([dot(shard_vectors[row], p) for p in positives], axis=1).astype(np.float32)
        )
        out.above.append(_above(dot(positives, q), row, row_scores, own, shard_vectors, q))
    their_ids, their_queries = theirs
    flat = [p for e in probes for p in e.positives]
    if len(their_ids):
        index = index_for(their_queries, IndexSpec(device=spec.device))
        q_k = params.filter_query_k + 1
        q_scores, q_local = top_k(index, their_queries, np.stack([vectors[p] for p in flat]), q_k)
        q_ids = np.where(q_local >= 0, np.array(their_ids, dtype=object)[q_local], "")
    else:
        q_scores, q_ids = np.zeros((len(flat), 0), np.float32), np.zeros((len(flat), 0), object)
    start = 0
    for e in probes:
        out.query_scores.append(q_scores[start : start + len(e.positives)])
        out.query_ids.append(q_ids[start : start + len(e.positives)])
        start += len(e.positives)
    return out


def _find(sorted_keys: list[str], key: str) -> int | None:
    """The position of ``key`` in ``sorted_keys``, None when absent."""
    j = bisect_left(sorted_keys, key)
    return j if j < len(sorted_keys) and sorted_keys[j] == key else None


def _above(
    pos_scores: np.ndarray,
    row: np.ndarray,
    row_scores: np.ndarray,
    own: list[int],
    shard: np.ndarray,
    q: np.ndarray,
) -> np.ndarray:
    """(n_positives,): the shard's texts, ``own`` (shard positions) left out, that score above
    each positive; from the shard's top list when it reaches below the score, else exactly."""
    listed = ~np.isin(row, own)
    counts = (row_scores[listed][None, :] > pos_scores[:, None]).sum(1)  # (n_positives,)
    covered = len(row) == len(shard) or (len(row) > 0 and (pos_scores >= row_scores[-1]).all())
    if covered:
        return counts.astype(np.int64)
    every = dot(shard, q)  # (n_shard,)
    mine = every[own]
    return ((every[:, None] > pos_scores).sum(0) - (mine[:, None] > pos_scores).sum(0)).astype(
        np.int64
    )


@dataclass(frozen=True)
class BlockPool:
    """A merged block: its ``Ranked`` records (id order), a ``TaskPool`` over the keys they
    mention (its own texts first, with their vectors; then the texts it knows only as
    candidates: their "text" is their key, and they have no vector) and, per example id, the
    ``Similarity`` of its candidates to its positives, from the shards' cosines."""

    ranked: list[Ranked]
    pool: TaskPool
    similarity: dict[str, Similarity]
    unknown: frozenset[str]  # keys of texts the block does not hold (candidates only)

    def pending(self, row: dict) -> list[int]:
        """Positions in an assembled row's negatives that hold a text key, not yet its text."""
        return [i for i, t in enumerate(row["negatives"]) if t in self.unknown]


def merge_block(
    examples: list[Example],
    findings: Iterable[Findings],
    vectors: dict[str, np.ndarray],
    params: MiningParams,
    depth: int,
) -> BlockPool:
    """See module docstring. ``examples`` in id order, each shard's ``Findings`` for them;
    ``vectors`` holds their queries, positives and given negatives by key."""
    folded = None
    for more in findings:  # one shard at a time: memory stays one block's ``depth`` lists
        folded = fold(folded, more, depth, params.filter_query_k)
    merged = [_merge_one(i, e, folded) for i, e in enumerate(examples)]
    pool, unknown = _block_pool(examples, merged, vectors)
    ranked, similarity = [], {}
    for i, (e, (cand_keys, cand_scores, sims, above, q_lists)) in enumerate(
        zip(examples, merged, strict=True)
    ):
        q, pos_ids = pool.queries[i], pool.positive_ids[i]
        pos_scores = dot(pool.vectors[pos_ids], q)
        k = params.filter_k
        at_k = float(cand_scores[k - 1]) if len(cand_scores) >= k else None
        q_ranks = _query_ranks(e, q, vectors, q_lists, params)
        cand_ids = np.array([pool.where[c] for c in cand_keys], np.int64)
        ranked.append(
            Ranked(
                example=e,
                positive_ranks=tuple(
                    Ranks(int(r), qr, float(s), at_k)
                    for r, s, qr in zip(above, pos_scores, q_ranks, strict=True)
                ),
                query_vector=q,
                positive_ids=pos_ids,
                positive_scores=pos_scores,
                cand_ids=cand_ids,
                cand_scores=cand_scores,
            )
        )
        similarity[e.id] = _table(cand_ids, sims, pos_ids)
    return BlockPool(ranked, pool, similarity, unknown)


def _block_pool(
    examples: list[Example], merged: list[tuple], vectors: dict[str, np.ndarray]
) -> tuple[TaskPool, frozenset[str]]:
    """The block's ``TaskPool`` (see ``BlockPool``) and the keys it knows only as candidates."""
    texts = {text_key(t): t for e in examples for t in (*e.positives, *e.negatives)}
    known = sorted(texts)  # ids 0 .. len(known) - 1: the texts (and vectors) the block holds
    unknown = sorted(set().union(*(m[0] for m in merged)) - set(texts))  # candidates only
    keys = known + unknown
    where = {k: j for j, k in enumerate(keys)}
    positive_ids = [[where[text_key(p)] for p in e.positives] for e in examples]
    pool = TaskPool(
        examples=examples,
        keys=keys,
        where=where,
        texts={k: texts.get(k, k) for k in keys},
        vectors=np.stack([vectors[k] for k in known]),
        queries=np.stack([vectors[text_key(e.query)] for e in examples]),
        positive_ids=positive_ids,
        own_ids=[set(ids) for ids in positive_ids],
    )
    return pool, frozenset(unknown)


def fold(acc: Findings | None, more: Findings, depth: int, query_k: int) -> Findings:
    """Two shards' findings for the same examples as one: per example the first ``depth``
    candidates by (score desc, key asc), the counts summed, per positive the first
    ``query_k + 1`` queries by (score desc, id asc). Folding shard after shard keeps a merge's
    memory at one block's worth of ``depth`` lists, whatever the number of shards."""
    if acc is None:
        return more
    out = Findings([], [], [], [], [], [])
    for i in range(len(acc.cand_keys)):
        scores = np.concatenate([acc.cand_scores[i], more.cand_scores[i]])
        keys = np.concatenate([acc.cand_keys[i], more.cand_keys[i]])
        order = np.lexsort((keys, -scores))[:depth]
        out.cand_scores.append(scores[order])
        out.cand_keys.append(keys[order])
        out.cand_sims.append(np.concatenate([acc.cand_sims[i], more.cand_sims[i]])[order])
        out.above.append(acc.above[i] + more.above[i])
        q_scores = np.concatenate([acc.query_scores[i], more.query_scores[i]], axis=1)
        q_ids = np.concatenate([acc.query_ids[i], more.query_ids[i]], axis=1)
        q_order = np.lexsort((np.where(q_ids == "", "~", q_ids).astype(str), -q_scores))
        q_order = q_order[:, : query_k + 1]
        out.query_scores.append(np.take_along_axis(q_scores, q_order, 1))
        out.query_ids.append(np.take_along_axis(q_ids, q_order, 1))
    return out


def _merge_one(i: int, example: Example, merged: Findings):
    """Example ``i``'s candidates (own keys removed), cosines, rank counts and per positive
    its query list, from the folded findings."""
    keys = merged.cand_keys[i]
    keep = ~np.isin(keys, [k.encode() for k in Probe.of(example).own])
    q = (merged.query_scores[i], merged.query_ids[i])
    cand_keys = [k.decode() for k in keys[keep]]
    return cand_keys, merged.cand_scores[i][keep], merged.cand_sims[i][keep], merged.above[i], q


def _query_ranks(
    example: Example, q: np.ndarray, vectors: dict, merged: tuple, params: MiningParams
) -> list[int | None]:
    """Per positive: the example's query's rank among the task's queries searched with it
    (None when not within the first ``filter_query_k + 1``), as ``rank._query_ranks``."""
    q_scores, q_ids = merged
    out: list[int | None] = []
    for p, scores, ids in zip(example.positives, q_scores, q_ids, strict=True):
        valid = ids != ""
        scores, ids = scores[valid], ids[valid].astype(str)
        top = np.lexsort((ids, -scores))[: params.filter_query_k + 1]
        if example.id not in ids[top]:
            out.append(None)
            continue
        own = dot(q[None, :], vectors[text_key(p)])[0]
        others = top[ids[top] != example.id]
        out.append(int((scores[others] > own).sum()))
    return out


def _table(cand_ids: np.ndarray, sims: np.ndarray, positive_ids: list[int]) -> Similarity:
    """``Similarity`` from cosines a shard computed: rows by candidate id, columns by positive."""
    row = {int(c): r for r, c in enumerate(cand_ids)}
    column = {p: j for j, p in enumerate(positive_ids)}

    def similarity(ids: np.ndarray, positives: list[int]) -> np.ndarray:
        return sims[[row[int(c)] for c in ids]][:, [column[p] for p in positives]]

    return similarity
