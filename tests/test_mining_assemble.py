import numpy as np
import pytest

from kalm_data.curate.config import CurateConfig
from kalm_data.mining.assemble import assemble, draw_params
from kalm_data.mining.consistency import judge
from kalm_data.mining.mine_task import mine_task
from kalm_data.mining.negatives import DrawParams, DrawStats
from kalm_data.mining.params import MiningParams
from kalm_data.mining.pool import build_pool
from kalm_data.mining.rank import Ranked, rank_task
from kalm_data.records import Example, TrainingExample
from kalm_data.text import text_key

N_CORPUS = 60


def synthetic_task(n: int = 30, dim: int = 8):
    """Examples (some with given negatives, one with more than asked) over a random corpus."""
    rng = np.random.default_rng(1)
    unit = lambda v: (v / np.linalg.norm(v)).astype(np.float32)  # noqa: E731
    corpus = [f"doc {j}" for j in range(N_CORPUS)]
    vectors = {text_key(t): unit(rng.standard_normal(dim)) for t in corpus}
    examples = []
    for i in range(n):
        q = unit(rng.standard_normal(dim))
        vectors[text_key(f"query {i}")] = q
        vectors[text_key(f"pos {i}")] = unit(q + 0.5 * rng.standard_normal(dim))
        n_given = 9 if i == 0 else (2 if i % 3 == 0 else 0)
        given = [f"doc {(i + j) % N_CORPUS}" for j in range(n_given)]
        examples.append(
            Example(
                id=f"e{i:02d}",
                task="t",
                task_type="retrieval",
                query=f"query {i}",
                positives=[f"pos {i}"],
                negatives=given,
                source_file="f",
                source_rows=[i + 1],
                source_ids=[str(i)],
            )
        )
    return examples, vectors, corpus


@pytest.fixture(scope="module")
def ranked_task():
    pool = build_pool(*synthetic_task())
    p = MiningParams.from_config(
        CurateConfig(window_start=5, window_end=40, num_negatives=4, filter_rule="none")
    )
    return pool, p, rank_task(pool, p)


def test_given_negatives_first_then_drawn_ones_from_the_window(ranked_task):
    pool, p, ranked = ranked_task
    stats = DrawStats()
    for r in ranked[1:]:
        row = assemble(r, pool, p, "teacher-x", stats)
        assert TrainingExample(**row).model_dump() == row and row["teacher"] == "teacher-x"
        given = r.example.negatives
        assert row["negatives"][: len(given)] == given
        assert row["negative_ranks"][: len(given)] == [-1] * len(given)
        q = pool.queries[pool.examples.index(r.example)]
        expected = [float(pool.vectors[j] @ q) for j in pool.ids(given)]
        assert row["negative_scores"][: len(given)] == pytest.approx(expected, abs=1e-6)
        drawn = row["negatives"][len(given) :]
        assert not set(drawn) & set(given) and not set(drawn) & set(r.example.positives)
        ranks = row["negative_ranks"][len(given) :]
        assert ranks == sorted(ranks) and all(5 <= k < 40 for k in ranks)
        assert [r.cand_ids[k] for k in ranks] == pool.ids(drawn)
        assert len(row["negatives"]) <= 4
    assert sum(stats.counts.values()) == len(ranked) - 1
    assert stats.counts.get(4, 0) > 0 and stats.skipped_margin > 0  # draws and guards ran


def test_given_negatives_beyond_the_count_are_cut_and_nothing_is_drawn(ranked_task):
    pool, p, ranked = ranked_task
    stats = DrawStats()
    row = assemble(ranked[0], pool, p, "t", stats)  # e00 brings 9 given negatives
    assert row["negatives"] == ranked[0].example.negatives[:4]
    assert row["negative_ranks"] == [-1] * 4
    assert stats.counts == {4: 1} and stats.short == 0


def test_draw_params_and_the_pieces_compose_into_mine_task():
    examples, vectors, corpus = synthetic_task()
    p = MiningParams.from_config(CurateConfig(window_start=5, window_end=40, filter_k=5, seed=3))
    assert draw_params(p) == DrawParams(window=(5, 40), margin=0.95, near_duplicate=0.98, seed=3)
    pool = build_pool(examples, vectors, corpus)
    verdicts = [v for r in rank_task(pool, p) for v in judge(r, p)]  # the filter on its own
    stats = DrawStats()
    kept = [assemble(v, pool, p, "t", stats) for v in verdicts if isinstance(v, Ranked)]
    rejected = [v for v in verdicts if not isinstance(v, Ranked)]
    assert rejected  # filter_k=5 over a random corpus rejects some
    whole = mine_task(examples[::-1], vectors, corpus, p, "t")
    assert (whole.kept, whole.rejected, whole.stats) == (kept, rejected, stats)
