import numpy as np
import pytest

from kalm_data.curate.config import CurateConfig
from kalm_data.mining.params import MiningParams
from kalm_data.mining.pool import build_pool
from kalm_data.mining.rank import rank_task
from kalm_data.records import Example
from kalm_data.text import text_key


def synthetic_task(n: int = 40, n_corpus: int = 30, dim: int = 8, seed: int = 0):
    """Examples whose positives lie near their queries, a corpus, and unit vectors for all."""
    rng = np.random.default_rng(seed)
    unit = lambda v: (v / np.linalg.norm(v)).astype(np.float32)  # noqa: E731
    vectors, examples = {}, []
    for i in range(n):
        q = unit(rng.standard_normal(dim))
        positives = [f"pos {i}"] + ([f"pos {i} bis"] if i % 7 == 0 else [])
        for p in positives:
            vectors[text_key(p)] = unit(q + 0.6 * rng.standard_normal(dim))
        vectors[text_key(f"query {i}")] = q
        examples.append(
            Example(
                id=f"e{i:02d}",
                task="t",
                task_type="retrieval",
                query=f"query {i}",
                positives=positives,
                negatives=[],
                source_file="f",
                source_rows=[i + 1],
                source_ids=[str(i)],
            )
        )
    corpus = [f"doc {j}" for j in range(n_corpus)]
    vectors.update((text_key(t), unit(rng.standard_normal(dim))) for t in corpus)
    return examples, vectors, corpus


def params(**kw) -> MiningParams:
    return MiningParams.from_config(CurateConfig(**kw))


@pytest.fixture(scope="module")
def task():
    return build_pool(*synthetic_task())


def test_candidates_are_the_pool_by_score_without_own_texts(task):
    # The pool (98 texts) is shallower than the search, so every candidate comes back.
    ranked = rank_task(task, params(window_start=50, window_end=100))
    assert [r.example for r in ranked] == task.examples
    for i, r in enumerate(ranked):
        scores = task.vectors @ task.queries[i]
        expected = sorted(set(range(len(task.keys))) - task.own_ids[i], key=lambda j: -scores[j])
        assert r.cand_ids.tolist() == expected
        assert np.all(np.diff(r.cand_scores) <= 0)
        assert r.positive_ids == task.positive_ids[i]
        np.testing.assert_allclose(
            r.positive_scores, task.vectors[r.positive_ids] @ r.query_vector, atol=1e-6
        )


def test_positive_rank_is_exact_and_score_at_k_is_the_kth_candidate(task):
    # Depth 2 + 2 + 1 = 5 of 98: ranks beyond the depth come from the exact pass.
    ranked = rank_task(task, params(window_start=1, window_end=2, filter_k=2))
    beyond = 0
    for i, r in enumerate(ranked):
        scores = task.vectors @ task.queries[i]
        others = [j for j in range(len(task.keys)) if j not in task.own_ids[i]]
        best = r.ranks.positive_score
        assert best == pytest.approx(float(scores[task.positive_ids[i]].max()), abs=1e-6)
        assert r.ranks.positive_rank == int((scores[others] > best).sum())
        assert r.ranks.score_at_k == pytest.approx(float(np.sort(scores[others])[::-1][1]))
        beyond += r.ranks.positive_rank >= len(r.cand_ids)
    assert beyond > 0  # the exact pass was exercised


def test_query_rank_is_the_reverse_direction(task):
    query_k = 3
    ranked = rank_task(task, params(filter_query_k=query_k))
    seen_none = False
    for i, r in enumerate(ranked):
        best = task.vectors[task.positive_ids[i][int(np.argmax(r.positive_scores))]]
        by_query = task.queries @ best  # (n_examples,)
        rank = int((np.delete(by_query, i) > by_query[i]).sum())
        assert r.ranks.query_rank == (rank if rank <= query_k else None)
        seen_none |= r.ranks.query_rank is None
    assert seen_none


def test_ties_rank_by_pool_id_and_few_candidates_give_no_score_at_k():
    examples, vectors, corpus = synthetic_task(n=3, n_corpus=4)
    vectors[text_key("doc 3")] = vectors[text_key("doc 1")]  # an exact tie
    pool = build_pool(examples, vectors, corpus)
    ranked = rank_task(pool, params(filter_k=50))
    for r in ranked:
        cand = r.cand_ids.tolist()
        tied = pool.ids(["doc 1", "doc 3"])
        assert cand.index(tied[0]) - cand.index(tied[1]) == (-1 if tied[0] < tied[1] else 1)
        assert r.ranks.score_at_k is None  # 6 candidates < k


def test_every_positive_has_its_own_exact_rank_and_query_rank(task):
    query_k = 3
    ranked = rank_task(task, params(window_start=1, window_end=2, filter_k=2, filter_query_k=3))
    several = 0
    for i, r in enumerate(ranked):
        scores = task.vectors @ task.queries[i]
        others = [j for j in range(len(task.keys)) if j not in task.own_ids[i]]
        assert len(r.positive_ranks) == len(r.example.positives)
        for j, ranks in zip(task.positive_ids[i], r.positive_ranks, strict=True):
            assert ranks.positive_score == pytest.approx(float(scores[j]), abs=1e-6)
            assert ranks.positive_rank == int((scores[others] > scores[j]).sum())
            by_query = task.queries @ task.vectors[j]  # (n_examples,)
            rank = int((np.delete(by_query, i) > by_query[i]).sum())
            assert ranks.query_rank == (rank if rank <= query_k else None)
        several += len(r.positive_ranks) > 1
    assert several > 0
