"""Mining reads each task's vectors from the embedding cache by key; a text the cache lacks
fails its task with an error naming the task, the text and the cache."""

import pytest

from kalm_data.beam.mine import MineTaskFn, example_texts
from kalm_data.curate.config import CurateConfig
from kalm_data.dedup import merge_by_query
from kalm_data.embed.cache import EmbeddingCache
from kalm_data.mining.mine_task import mine_task
from kalm_data.mining.params import MiningParams
from kalm_data.records import InputPair, RejectedRecord
from kalm_data.text import text_key

from realdata import load_pairs

PARAMS = MiningParams.from_config(
    CurateConfig(window_start=5, window_end=20, num_negatives=3, filter_k=10)
)


def _examples(n: int):
    rows = load_pairs(n, source="disfl")
    return [
        merge_by_query(
            [
                InputPair(
                    id=r["id"],
                    task="t",
                    query=r["query"],
                    positives=[r["positive"]],
                    source_file="f",
                    source_row=i,
                )
            ]
        )[0]
        for i, r in enumerate(rows)
    ]


def _mine(examples, cache, corpus=()):
    fn = MineTaskFn(PARAMS.to_dict(), "minilm", cache)
    fn.setup()
    out = list(fn.process(("t", examples), list(corpus), []))
    kept = [o[1] for o in out if isinstance(o, tuple)]  # (task, row), one per kept row
    rejected = [o.source_row for o in out if isinstance(o, RejectedRecord)]
    return kept, rejected


def test_mining_from_the_cache_equals_mining_the_vectors_directly(fill_cache):
    examples = _examples(60)
    corpus = [r["positive"] for r in load_pairs(100, source="disfl")[60:]]
    texts = sorted({t for e in examples for _, t in example_texts(e)} | set(corpus))
    cache = fill_cache(texts)
    vectors = EmbeddingCache(*cache).vectors_of({text_key(t): t for t in texts})
    assert len(vectors) == len(texts)

    kept, rejected = _mine(examples, cache, [(text_key(t), t) for t in corpus])
    direct = mine_task(examples, vectors, corpus, PARAMS, "minilm")
    assert kept == direct.kept
    assert rejected == [r.source_row for r in direct.rejected]
    assert len(kept) + len(rejected) == len(examples)
    # Only the vectors asked for are read: a task of 5 examples gets its own texts' vectors.
    few = {k: t for e in examples[:5] for k, t in example_texts(e)}
    assert set(EmbeddingCache(*cache).vectors_of(few)) == set(few)


def test_a_text_missing_from_the_cache_fails_its_task_naming_it(fill_cache):
    examples = _examples(30)
    texts = {t for e in examples for _, t in example_texts(e)}
    lost = examples[1].query
    cache = fill_cache(sorted(texts - {lost}))
    with pytest.raises(RuntimeError, match=r"mine t: 1 texts have no vector") as err:
        _mine(examples, cache)
    assert text_key(lost) in str(err.value) and "--cache-dir" in str(err.value)
