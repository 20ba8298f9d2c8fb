import numpy as np

from kalm_data.mining.pool import build_pool
from kalm_data.records import Example
from kalm_data.text import text_key


def example(id_: str, query: str, positives: list[str], negatives: list[str] = ()) -> Example:
    return Example(
        id=id_,
        task="t",
        task_type="retrieval",
        query=query,
        positives=positives,
        negatives=list(negatives),
        source_file="f",
        source_rows=[1],
        source_ids=[id_],
    )


def vectors_for(texts: list[str], dim: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    v = rng.standard_normal((len(texts), dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return dict(zip(map(text_key, texts), v, strict=True))


EXAMPLES = [
    example("b", "query b", ["pos b1", "pos b2"], ["neg shared"]),
    example("a", "query a", ["pos a"], ["neg shared", "neg a"]),
    example("c", "corpus 1", ["pos c"]),  # its query is also a corpus text
]
CORPUS = ["corpus 1", "corpus 2", "pos a"]  # "pos a" is both a positive and a corpus text
TEXTS = sorted({t for e in EXAMPLES for t in (e.query, *e.positives, *e.negatives)} | {*CORPUS})


def test_pool_is_the_unique_texts_in_key_order_and_examples_in_id_order():
    pool = build_pool(EXAMPLES, vectors_for(TEXTS), CORPUS)
    pooled = {t for e in EXAMPLES for t in (*e.positives, *e.negatives)} | set(CORPUS)
    assert pool.keys == sorted(map(text_key, pooled))  # queries are not pooled unless given
    assert [e.id for e in pool.examples] == ["a", "b", "c"]
    assert [pool.text(j) for j in pool.ids(["neg shared", "corpus 2"])] == [
        "neg shared",
        "corpus 2",
    ]
    assert pool.where == {k: j for j, k in enumerate(pool.keys)}


def test_positive_ids_own_ids_and_vectors_line_up():
    vectors = vectors_for(TEXTS)
    pool = build_pool(EXAMPLES, vectors, CORPUS)
    a, b, c = pool.examples
    assert [pool.text(j) for j in pool.positive_ids[1]] == ["pos b1", "pos b2"]
    assert pool.own_ids[0] == set(pool.ids(["pos a"]))  # its query is not in the pool
    assert pool.own_ids[2] == set(pool.ids(["pos c", "corpus 1"]))  # its query is
    assert pool.vectors.dtype == np.float32 and pool.vectors.shape == (len(pool.keys), 6)
    for j, key in enumerate(pool.keys):
        assert np.array_equal(pool.vectors[j], vectors[key])
    for i, e in enumerate(pool.examples):
        assert np.array_equal(pool.queries[i], vectors[text_key(e.query)])


def test_pool_does_not_depend_on_input_order():
    vectors = vectors_for(TEXTS)
    one, other = build_pool(EXAMPLES, vectors, CORPUS), build_pool(EXAMPLES[::-1], vectors, CORPUS)
    assert one.keys == other.keys and one.examples == other.examples
    assert one.positive_ids == other.positive_ids and one.own_ids == other.own_ids
    assert np.array_equal(one.queries, other.queries)
