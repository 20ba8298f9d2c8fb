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
)


def ranked(ranks: Ranks) -> Ranked:
    """A Ranked record built by hand: the filter needs nothing from the ranking machinery."""
    return Ranked(
        example=EXAMPLE,
        ranks=ranks,
        query_vector=np.zeros(4, np.float32),
        positive_ids=[0, 1],
        positive_scores=np.array([0.25, ranks.positive_score], np.float32),
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
        assert judge(r, params(filter_rule=rule)) is r
    assert judge(ranked(SWAPPED), params(filter_rule="none")).ranks == SWAPPED


def test_the_rule_and_its_settings_decide():
    assert isinstance(judge(ranked(HARD), params(filter_rule="kalm")), RejectedRecord)
    assert isinstance(judge(ranked(HARD), params(filter_rule="mutual")), Ranked)
    # The query ranks 2nd among queries: kept by "mutual" only while query_k > 2.
    assert isinstance(judge(ranked(HARD), params(filter_query_k=2)), RejectedRecord)
    assert isinstance(judge(ranked(HARD), params(filter_k=81, filter_rule="kalm")), Ranked)


def test_a_rejection_names_the_filter_and_carries_the_evidence():
    p = params(filter_rule="mutual", filter_k=50, filter_query_k=10, filter_margin=0.05)
    out = judge(ranked(SWAPPED), p)
    assert isinstance(out, RejectedRecord)
    assert (out.stage, out.reason) == (reasons.FILTER, reasons.INCONSISTENT_RANKING)
    assert out.id == "q7" and out.task == "t" and out.rows == 2  # two merged input rows
    assert (out.source_file, out.source_row) == ("in.jsonl", 12)
    assert out.detail == "in.jsonl:12: " + explain("mutual", SWAPPED, 50, 10, 0.05)
    record = json.loads(out.record)
    assert record["positives"] == EXAMPLE.positives and record["source_ids"] == ["a", "b"]
    assert record["positive_scores"] == [0.25, 0.125]
    assert (record["positive_rank"], record["query_rank"], record["score_at_k"]) == (300, None, 0.6)
