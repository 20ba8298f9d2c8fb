import json

import numpy as np

from kalm_data import reasons
from kalm_data.curate.config import CurateConfig
from kalm_data.mining.consistency import Ranks, explain, judge
from kalm_data.mining.params import MiningParams
from kalm_data.mining.rank import Ranked
from kalm_data.records import Example, RejectedRecord

EXAMPLE = Example(
    id="q7",
    task="t",
    task_type="retrieval",
    query="what is x?",
    positives=["x is y", "x is z"],
    negatives=[],
    source_file="in.jsonl",
    source_rows=[12, 40],
    source_ids=["a", "b"],
    row_positives=[[0], [1]],
)


def ranked(second: Ranks, first: Ranks | None = None) -> Ranked:
    """A Ranked record built by hand: the filter needs nothing from the ranking machinery.
    Positive 0 (row 12) is ``first`` (by default: as ``second`` but scoring 0.25)."""
    first = first or Ranks(second.positive_rank, second.query_rank, 0.25, second.score_at_k)
    return Ranked(
        example=EXAMPLE,
        positive_ranks=(first, second),
        query_vector=np.zeros(4, np.float32),
        positive_ids=[0, 1],
        positive_scores=np.array([first.positive_score, second.positive_score], np.float32),
        cand_ids=np.arange(2, 10),
        cand_scores=np.linspace(0.9, 0.1, 8, dtype=np.float32),
    )


def params(**kw) -> MiningParams:
    return MiningParams.from_config(CurateConfig(**kw))


EASY = Ranks(positive_rank=0, query_rank=0, positive_score=0.5, score_at_k=0.3)
HARD = Ranks(positive_rank=80, query_rank=2, positive_score=0.5, score_at_k=0.6)
SWAPPED = Ranks(positive_rank=300, query_rank=None, positive_score=0.125, score_at_k=0.6)


def test_kept_examples_come_back_unchanged():
    for rule in ("kalm", "mutual", "none"):
        r = ranked(EASY)
        (out,) = judge(r, params(filter_rule=rule))
        assert out is r
    r = ranked(SWAPPED)
    (out,) = judge(r, params(filter_rule="none"))
    assert out is r and out.positive_ranks[1] == SWAPPED


def test_the_rule_and_its_settings_decide():
    def kept(second, **kw):
        return [type(v) for v in judge(ranked(second), params(**kw))] == [Ranked]

    assert not kept(HARD, filter_rule="kalm")
    assert kept(HARD, filter_rule="mutual")
    # The query ranks 2nd among queries: kept by "mutual" only while query_k > 2.
    assert not kept(HARD, filter_query_k=2)
    assert kept(HARD, filter_k=81, filter_rule="kalm")


def test_each_failing_row_is_rejected_with_the_evidence():
    p = params(filter_rule="mutual", filter_k=50, filter_query_k=10, filter_margin=0.05)
    first = Ranks(positive_rank=290, query_rank=None, positive_score=0.25, score_at_k=0.6)
    out = judge(ranked(SWAPPED, first), p)
    assert all(isinstance(o, RejectedRecord) for o in out) and len(out) == 2  # one per row
    for o, row, row_id, ranks in zip(out, (12, 40), ("a", "b"), (first, SWAPPED), strict=True):
        assert (o.stage, o.reason) == (reasons.FILTER, reasons.INCONSISTENT_RANKING)
        assert o.id == row_id and o.task == "t" and o.rows == 1
        assert (o.source_file, o.source_row) == ("in.jsonl", row)
        assert o.detail == f"in.jsonl:{row}: " + explain("mutual", ranks, 50, 10, 0.05)
        record = json.loads(o.record)
        assert record["source_ids"] == [row_id] and record["example_id"] == "q7"
        assert record["positive_scores"] == [ranks.positive_score]
        assert record["positive_ranks"] == [ranks.positive_rank]
        assert (record["positive_rank"], record["query_rank"]) == (ranks.positive_rank, None)
        assert record["score_at_k"] == 0.6


def test_a_failing_positive_leaves_and_the_other_row_stays():
    rejected, kept = judge(ranked(SWAPPED, EASY), params(filter_rule="mutual"))
    assert isinstance(rejected, RejectedRecord) and rejected.id == "b" and rejected.rows == 1
    assert json.loads(rejected.record)["positives"] == ["x is z"]
    assert isinstance(kept, Ranked) and kept.dropped == 1
    e = kept.example
    assert (e.id, e.positives, e.source_rows, e.source_ids) == ("q7", ["x is y"], [12], ["a"])
    assert e.row_positives == [[0]] and kept.positive_ids == [0]
    assert kept.positive_ranks == (EASY,) and kept.ranks == EASY


def test_a_row_carrying_a_passing_positive_stays_and_loses_the_failing_one():
    one_row = EXAMPLE.model_copy(
        update={"source_rows": [12], "source_ids": ["a"], "row_positives": [[0, 1]]}
    )
    r = ranked(SWAPPED, EASY)
    r = Ranked(**{**r.__dict__, "example": one_row})
    (kept,) = judge(r, params(filter_rule="kalm"))
    assert kept.example.positives == ["x is y"] and kept.example.source_rows == [12]
    assert kept.dropped == 1
