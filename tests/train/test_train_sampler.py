"""Shards -> rows -> semi-homogeneous batches without duplicate texts -> batch texts/targets."""

from __future__ import annotations

import math
from collections import Counter

import fsspec
import pyarrow.parquet as pq
import pytest
from train_helpers import shard_rows, write_shards

from kalm_data.arrow_schema import to_table
from kalm_data.records import TrainingExample
from kalm_data.train.batch import format_query, make_batch
from kalm_data.train.config import TrainConfig
from kalm_data.train.data import TrainRow, load_rows
from kalm_data.train.sampler import SemiHomogeneousBatchSampler


@pytest.fixture(scope="module")
def rows(shards):
    return load_rows([str(shards)])


def batch_texts(rows, batch) -> list[str]:
    """Every text a batch puts in front of the model (queries, chosen positives and negatives)."""
    out = []
    for pick in batch:
        row = rows[pick.row]
        out += [row.query, row.positives[pick.positive]]
        out += [row.negatives[j] for j in pick.negatives]
    return out


def test_load_rows_reads_every_task_sorted(rows, real_pairs):
    assert len(rows) == sum(len(p) for p in real_pairs.values())
    assert Counter(r.task for r in rows) == {s: len(p) for s, p in real_pairs.items()}
    assert rows == sorted(rows, key=lambda r: (r.task, r.id, r.query))
    assert all(len(r.negatives) == len(r.negative_scores) == 3 for r in rows)


def test_load_rows_drops_false_negatives_and_keeps_rows_without_negatives(tmp_path, real_pairs):
    pairs = real_pairs["disfl-qa/dev"][:4]
    recs = shard_rows(pairs)
    recs[0]["negatives"] = [recs[0]["positives"][0], recs[0]["query"], "x", "x"]
    recs[0]["negative_scores"] = [0.9, 0.8, 0.1, 0.1]
    recs[1]["negatives"], recs[1]["negative_scores"] = [], []
    write_shards(tmp_path, {"t": recs})
    by_id = {r.id: r for r in load_rows([str(tmp_path)])}
    first = by_id[recs[0]["id"]]
    assert first.negatives == ["x"] and first.negative_scores == pytest.approx([0.1])
    assert by_id[recs[1]["id"]].negatives == []


def test_load_rows_from_an_fsspec_url(real_pairs):
    fs = fsspec.filesystem("memory")
    table = to_table(TrainingExample, shard_rows(real_pairs["disfl-qa/dev"][:5]))
    with fs.open("/kalm-test/data/dq/part-00000-of-00001.parquet", "wb") as f:
        pq.write_table(table, f)
    rows = load_rows(["memory://kalm-test"])
    assert [r.task for r in rows] == ["disfl-qa/dev"] * 5


def test_missing_shards_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no task shards"):
        load_rows([str(tmp_path)])


@pytest.mark.parametrize("ratio", [0.0, 0.5, 1.0])
def test_batches_follow_the_ratio_and_hold_no_duplicate_texts(rows, ratio):
    b = 8
    sampler = SemiHomogeneousBatchSampler(rows, b, num_negatives=2, ratio=ratio, seed=1)
    h = round(ratio * b)
    mixed = 0
    for epoch in range(3):
        plan = sampler.plan(epoch)
        assert plan
        for batch in plan:
            assert len(batch) == b
            texts = batch_texts(rows, batch)
            assert len(texts) == len(set(texts)), "duplicate text in a batch"
            tasks = Counter(rows[p.row].task for p in batch)
            assert tasks.most_common(1)[0][1] >= h
            mixed += len(tasks) > 1
    if ratio == 1.0:
        assert mixed == 0
    if ratio == 0.0:
        assert mixed > 0


def test_chunk_tasks_are_drawn_in_proportion_to_task_size(rows):
    sampler = SemiHomogeneousBatchSampler(rows, 4, num_negatives=1, ratio=1.0, seed=0)
    counts = Counter()
    for epoch in range(5):
        for batch in sampler.plan(epoch):
            counts[rows[batch[0].row].task] += 1
    sizes = Counter(r.task for r in rows)
    for task, size in sizes.items():
        # floor(n / 4) chunks per epoch (15, 10, 5 for 60, 40, 20 rows), a few fewer when
        # rows sharing texts (a negative that is another row's positive) cannot meet in a chunk
        assert 0.9 * 5 * (size // 4) <= counts[task] <= 5 * (size // 4)


def test_duplicate_positives_never_share_a_batch(real_pairs):
    pairs = real_pairs["medquad/1_CancerGov_QA"][:12]
    rows = [
        TrainRow(
            str(i),
            "t",
            "retrieval",
            None,
            p["query"],
            ["SAME ANSWER" if i % 3 == 0 else p["positive"]],
        )
        for i, p in enumerate(pairs)
    ]
    sampler = SemiHomogeneousBatchSampler(rows, 4, num_negatives=0, ratio=1.0, seed=0)
    plan = sampler.plan(0)
    for batch in plan:
        assert sum(rows[p.row].positives == ["SAME ANSWER"] for p in batch) <= 1
    assert len(plan) >= 2


def test_plan_is_deterministic_and_resumable(rows):
    a = SemiHomogeneousBatchSampler(rows, 8, 2, 0.5, seed=3)
    first = [a.next_batch() for _ in range(20)]  # crosses an epoch boundary
    assert a.epoch >= 1
    b = SemiHomogeneousBatchSampler(rows, 8, 2, 0.5, seed=3)
    for _ in range(7):
        b.next_batch()
    c = SemiHomogeneousBatchSampler(rows, 8, 2, 0.5, seed=3)
    c.load_state_dict(b.state_dict())
    assert [c.next_batch() for _ in range(13)] == first[7:]
    with pytest.raises(ValueError, match="batch_size"):
        SemiHomogeneousBatchSampler(rows, 4, 2, 0.5, seed=3).load_state_dict(b.state_dict())


def test_make_batch_groups_instructions_and_teacher_scores(rows):
    cfg = TrainConfig(num_negatives=2)
    sampler = SemiHomogeneousBatchSampler(rows, 4, 2, 0.0, seed=0)
    picks = sampler.next_batch()
    batch = make_batch(rows, picks, cfg)
    assert len(batch.queries) == 4 and len(batch.passages) == 4 * 3
    for i, pick in enumerate(picks):
        row = rows[pick.row]
        assert batch.queries[i] == f"Instruct: {row.task}\nQuery: {row.query}"
        assert batch.passages[batch.labels[i]] == row.positives[pick.positive]
        group = [batch.passages[j] for j in batch.groups[i]]
        assert group[1:] == [row.negatives[j] for j in pick.negatives]
        assert batch.teacher[i][0] == pytest.approx(row.positive_scores[pick.positive])


def test_symmetric_tasks_get_no_instruction_unless_configured():
    sts = TrainRow(
        "1", "stsb", "sts", "Retrieve similar sentences", "A man sings.", ["A man is singing."]
    )
    qa = TrainRow("2", "faq", "retrieval", "Answer the question", "why?", ["because"])
    cfg = TrainConfig()
    assert format_query(sts, cfg) == "A man sings."
    assert format_query(qa, cfg) == "Instruct: Answer the question\nQuery: why?"
    assert format_query(sts, TrainConfig(instruct_symmetric=True)).startswith("Instruct: Retrieve")


def test_short_negative_lists_make_smaller_groups(rows):
    short = [
        TrainRow(
            r.id,
            r.task,
            r.task_type,
            None,
            r.query,
            r.positives,
            [f"neg {i}-{k}" for k in range(i % 3)],
        )
        for i, r in enumerate(rows[:6])
    ]
    sampler = SemiHomogeneousBatchSampler(short, 6, 2, 0.0, seed=0)
    batch = make_batch(short, sampler.next_batch(), TrainConfig())
    assert len(batch.passages) == 6 + sum(min(i % 3, 2) for i in range(6))
    assert all(len(g) == 3 for g in batch.groups)
    assert any(
        g[-1] == -1 and math.isnan(t[-1]) for g, t in zip(batch.groups, batch.teacher, strict=True)
    )
