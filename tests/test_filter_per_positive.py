"""Per-positive filtering on real pairs with the real teacher: a swapped positive merged with a
correct one leaves alone, its row is rejected with the evidence, and rows balance."""

import json

import pytest

from kalm_data import reasons
from kalm_data.beam.stage import StageRunner
from kalm_data.curate.config import CurateConfig
from kalm_data.dedup import merge_by_query
from kalm_data.mining.mine_task import mine_task
from kalm_data.mining.params import MiningParams
from kalm_data.mining.pool import build_pool
from kalm_data.mining.rank import Ranked, rank_task
from kalm_data.records import Example, InputPair, RawRow, RejectedRecord
from kalm_data.stages.filter import RankingConsistency
from kalm_data.text import text_key
from kalm_data.validate import validate_row

from realdata import load_pairs

N = 300


def pairs_of(rows: list[dict]) -> list[InputPair]:
    """Real validation of rows as lines 1.. of pairs.jsonl."""
    out = []
    for n, r in enumerate(rows, start=1):
        raw = RawRow(source_file="pairs.jsonl", source_row=n, task="t", payload=r)
        out.append(validate_row(raw, {}, 100_000))
    assert all(isinstance(p, InputPair) for p in out)
    return out


@pytest.fixture(scope="module")
def task(teacher):
    """300 Disfl-QA rows, plus row 301: row 1's query with row 151's positive (a swap)."""
    rows = load_pairs(N, source="disfl")
    swapped = {**rows[0], "id": "swapped", "positive": rows[150]["positive"]}
    pairs = pairs_of([*rows, swapped])
    by_query: dict[str, list[InputPair]] = {}
    for p in pairs:
        by_query.setdefault(p.query, []).append(p)
    examples = [merge_by_query(group)[0] for group in by_query.values()]
    texts = sorted({t for e in examples for t in (e.query, *e.positives)})
    vectors = dict(zip(map(text_key, texts), teacher.encode(texts), strict=True))
    return rows, examples, vectors


def params(**kw) -> MiningParams:
    # k scaled to the 300-text pool (see tests/test_mining.py).
    base = dict(filter_k=10, filter_query_k=3, window_start=10, window_end=40, num_negatives=3)
    return MiningParams.from_config(CurateConfig(**{**base, **kw}))


def merged(examples: list[Example]) -> Example:
    (example,) = [e for e in examples if len(e.source_ids) > 1]
    return example


def test_merge_records_which_row_brought_each_positive(task):
    rows, examples, _ = task
    e = merged(examples)
    assert e.source_ids == [rows[0]["id"], "swapped"] and e.source_rows == [1, N + 1]
    assert e.positives == [rows[0]["positive"], rows[150]["positive"]]
    assert e.row_positives == [[0], [1]]


@pytest.mark.parametrize("rule", ["mutual", "kalm"])
def test_the_swapped_positive_alone_leaves_and_its_row_is_rejected(task, rule):
    rows, examples, vectors = task
    p = params(filter_rule=rule)
    e = merged(examples)
    (ranked,) = [r for r in rank_task(build_pool(examples, vectors, []), p) if r.example == e]
    runner = StageRunner(RankingConsistency(p))  # the Beam shell: raises if rows do not balance
    runner.setup()
    rejected, kept = runner(ranked)

    assert isinstance(rejected, RejectedRecord)
    assert (rejected.stage, rejected.reason) == (reasons.FILTER, reasons.INCONSISTENT_RANKING)
    assert (rejected.id, rejected.source_row, rejected.rows) == ("swapped", N + 1, 1)
    record = json.loads(rejected.record)
    assert record["positives"] == [rows[150]["positive"]] and record["source_ids"] == ["swapped"]
    assert record["example_id"] == e.id
    assert record["positive_scores"] == [pytest.approx(float(ranked.positive_scores[1]))]
    assert record["positive_ranks"] == [ranked.positive_ranks[1].positive_rank]
    assert record["positive_rank"] >= 10 or rule == "mutual"
    assert "score_at_k" in record and "query_ranks" in record

    assert isinstance(kept, Ranked) and kept.dropped == 1
    assert kept.example.positives == [rows[0]["positive"]]
    assert kept.example.source_ids == [rows[0]["id"]] and kept.example.source_rows == [1]
    assert kept.ranks == ranked.positive_ranks[0]


def test_mine_task_accounts_for_every_row(task):
    rows, examples, vectors = task
    out = mine_task(examples, vectors, [], params(), "minilm")
    kept = [i for row in out.kept for i in row["source_ids"]]
    dropped = [i for r in out.rejected for i in json.loads(r.record)["source_ids"]]
    assert sorted(kept + dropped) == sorted(i for e in examples for i in e.source_ids)
    assert sum(r.rows for r in out.rejected) == len(dropped)
    assert "swapped" in dropped and rows[0]["id"] in kept
    (row,) = [r for r in out.kept if rows[0]["id"] in r["source_ids"]]
    assert row["positives"] == [rows[0]["positive"]] and len(row["positive_scores"]) == 1
    assert out.positives_dropped >= 1


def test_a_row_with_a_passing_and_a_failing_positive_stays(task, teacher):
    """One input row carrying both answers: it stays, the failing one is dropped and counted."""
    rows, examples, vectors = task
    both = {**rows[0], "positive": [rows[0]["positive"], rows[150]["positive"]]}
    pairs = pairs_of([both, *rows[1:]])
    alone = [merge_by_query([p])[0] for p in pairs]
    assert alone[0].row_positives == [[0, 1]]
    out = mine_task(alone, vectors, [], params(), "minilm")
    (row,) = [r for r in out.kept if r["id"] == rows[0]["id"]]
    assert row["positives"] == [rows[0]["positive"]] and row["source_rows"] == [1]
    assert out.positives_dropped >= 1
    assert rows[0]["id"] not in {r.id for r in out.rejected}


def test_an_example_must_say_which_rows_carry_its_positives():
    base = dict(id="e", task="t", task_type="retrieval", query="q", negatives=[], source_file="f")
    one = Example(**base, positives=["a", "b"], source_rows=[1], source_ids=["x"])
    assert one.row_positives == [[0, 1]]
    with pytest.raises(ValueError, match="row_positives"):
        Example(**base, positives=["a", "b"], source_rows=[1, 2], source_ids=["x", "y"])
    with pytest.raises(ValueError, match="each positive a row"):
        Example(
            **base,
            positives=["a", "b"],
            source_rows=[1, 2],
            source_ids=["x", "y"],
            row_positives=[[0], [0]],
        )
