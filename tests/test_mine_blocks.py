"""Mining a task as blocks of examples against key-range shards of its pool, merged, equals
mining it whole, on real pairs embedded with the real teacher."""

import pickle
import tracemalloc

import numpy as np
import pytest

from kalm_data.curate.config import CurateConfig
from kalm_data.dedup import merge_by_query
from kalm_data.mining.assemble import assemble
from kalm_data.mining.blocks import (
    Probe,
    block_of,
    merge_block,
    shard_findings,
    shard_of,
)
from kalm_data.mining.consistency import judge
from kalm_data.mining.negatives import DrawStats
from kalm_data.mining.params import MiningParams
from kalm_data.mining.pool import build_pool
from kalm_data.mining.rank import Ranked, neighbours, rank_task
from kalm_data.records import InputPair
from kalm_data.text import text_key

from realdata import load_pairs


@pytest.fixture(scope="module")
def real(teacher):
    """600 real pairs merged by query (some share one), given negatives on a few, the vectors
    of every text."""
    rows = load_pairs(600, source="disfl")
    pairs = [
        InputPair(
            id=r["id"],
            task="t",
            query=rows[i - 1]["query"] if i % 50 == 7 else r["query"],  # shared queries
            positives=[r["positive"]],
            negatives=[rows[(i + 300) % len(rows)]["positive"]] if i % 9 == 0 else [],
            source_file="f",
            source_row=i,
        )
        for i, r in enumerate(rows)
    ]
    by_query: dict[str, list] = {}
    for p in pairs:
        by_query.setdefault(p.query, []).append(p)
    examples = [merge_by_query(group)[0] for group in by_query.values()]
    texts = sorted({t for e in examples for t in (e.query, *e.positives, *e.negatives)})
    vectors = dict(zip(map(text_key, texts), teacher.encode(texts), strict=True))
    return sorted(examples, key=lambda e: e.id), vectors


def _whole(examples, vectors, params):
    pool = build_pool(examples, vectors, [])
    stats, rows, rejected, ranks = DrawStats(), [], [], {}
    for ranked in rank_task(pool, params):
        ranks[ranked.example.id] = ranked.positive_ranks
        for v in judge(ranked, params):
            if isinstance(v, Ranked):
                rows.append(assemble(v, pool, params, "t", stats))
            else:
                rejected.append(v)
    return rows, rejected, stats, ranks


def _cut(examples, vectors, params, n):
    """The task cut n x n: per block, its examples and, per shard, the ``shard_findings``
    arguments of that piece."""
    spec, depth = params.index_spec(), neighbours(examples, params)
    texts = {text_key(t) for e in examples for t in (*e.positives, *e.negatives)}
    shards = [sorted(k for k in texts if shard_of(k, n) == s) for s in range(n)]
    blocks = [[e for e in examples if block_of(e.id, n) == b] for b in range(n)]
    for block in filter(None, blocks):
        probes = [Probe.of(e) for e in block]
        pieces = []
        for s in range(n):
            their_queries = np.stack([vectors[text_key(e.query)] for e in blocks[s]])
            theirs = ([e.id for e in blocks[s]], their_queries)
            shard = np.stack([vectors[k] for k in shards[s]])
            pieces.append((probes, shards[s], shard, theirs, vectors, params, depth, spec))
        yield block, pieces


def _blocks(examples, vectors, params, n):
    depth = neighbours(examples, params)
    texts = {text_key(t): t for e in examples for t in (*e.positives, *e.negatives)}
    stats, rows, rejected, ranks = DrawStats(), [], [], {}
    for block, pieces in _cut(examples, vectors, params, n):
        findings = [shard_findings(*args) for args in pieces]
        merged = merge_block(block, findings, vectors, params, depth)
        for ranked in merged.ranked:
            ranks[ranked.example.id] = ranked.positive_ranks
            for v in judge(ranked, params):
                if isinstance(v, Ranked):
                    sim = merged.similarity[v.example.id]
                    row = assemble(v, merged.pool, params, "t", stats, sim)
                    for i in merged.pending(row):
                        row["negatives"][i] = texts[row["negatives"][i]]
                    rows.append(row)
                else:
                    rejected.append(v)
    return sorted(rows, key=lambda r: r["id"]), rejected, stats, ranks


@pytest.mark.parametrize("n", [3, 5])
def test_blocks_against_pool_shards_mine_exactly_as_the_whole_task(real, n):
    examples, vectors = real
    params = MiningParams.from_config(
        CurateConfig(window_start=5, window_end=20, num_negatives=3, filter_k=10, filter_query_k=3)
    )
    rows, rejected, stats, ranks = _whole(examples, vectors, params)
    got_rows, got_rejected, got_stats, got_ranks = _blocks(examples, vectors, params, n)
    assert len({block_of(e.id, n) for e in examples}) == n
    assert any(len(e.positives) > 1 for e in examples) and any(e.negatives for e in examples)
    assert rejected and any(r["negatives"] for r in rows)  # the filter and the draw both bite
    every = [r for rs in ranks.values() for r in rs]
    assert any(r.positive_rank >= 30 for r in every)  # beyond the search depth: exact pass
    assert any(r.query_rank is None for r in every) and any(r.query_rank for r in every)
    assert got_ranks == ranks
    assert got_rows == rows
    key = lambda r: (r.source_row, r.id)  # noqa: E731
    assert sorted(got_rejected, key=key) == sorted(rejected, key=key)
    assert got_stats == stats


def _peak(fn, *args):
    """(result, peak bytes Python and numpy allocated while ``fn(*args)`` ran, beyond its
    inputs)."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = fn(*args)
        return result, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _piece_peaks(examples, vectors, params, n) -> tuple[int, int]:
    """The largest (findings piece, block merge) peak when the task is cut n x n."""
    depth = neighbours(examples, params)
    find_peak = merge_peak = 0
    for block, pieces in _cut(examples, vectors, params, n):
        pickled = []
        for args in pieces:
            found, peak = _peak(shard_findings, *args)
            find_peak = max(find_peak, peak)
            pickled.append(pickle.dumps(found))
        # the merge reads the shards' findings one at a time, as from a shuffle
        findings = map(pickle.loads, pickled)
        _, peak = _peak(merge_block, block, findings, vectors, params, depth)
        merge_peak = max(merge_peak, peak)
    return find_peak, merge_peak


def test_memory_of_a_piece_stays_flat_as_the_pool_grows_with_the_blocks(real):
    """Pools of 150 and 600 examples: mined whole, the peak grows with the pool; cut into
    blocks of ~19 (8 and 32 blocks), the largest piece's peak does not. (A merge holds up to
    block x depth candidate keys, so blocks are kept below pool / depth here.)"""
    examples, vectors = real
    params = MiningParams.from_config(
        CurateConfig(window_start=2, window_end=6, num_negatives=2, filter_k=4, filter_query_k=3)
    )
    small, large = examples[: len(examples) // 4], examples
    _whole(small, vectors, params)  # imports and first-call allocations, outside the peaks
    _piece_peaks(small, vectors, params, 2)
    whole = [_peak(_whole, ex, vectors, params)[1] for ex in (small, large)]
    pieces = [_piece_peaks(small, vectors, params, 8), _piece_peaks(large, vectors, params, 32)]
    assert whole[1] / whole[0] > 2.5
    assert pieces[1][0] / pieces[0][0] < 1.5  # findings: one shard, one block
    assert pieces[1][1] / pieces[0][1] < 1.5  # merge: one block, shard after shard
