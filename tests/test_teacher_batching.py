"""The teacher's fast path: token-budget batches, one tokenisation, the same vectors as
``SentenceTransformer.encode`` (real MiniLM, real pairs from ../shared/data)."""

import numpy as np
import pytest

from kalm_data.embed.batching import budget_batches, pad
from kalm_data.embed.buckets import encode_order
from kalm_data.embed.teacher import CPU_TOKEN_BUDGET, Teacher, default_teacher, default_token_budget
from kalm_data.text import normalize, text_key

from realdata import load_pairs


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Unique real texts, short queries and long passages (some over 256 tokens), in the
    embedding stage's (length, key) order."""
    rows = load_pairs(40)
    unique = {normalize(t) for r in rows for t in (r["query"], r["positive"])}
    return [t for _, t in encode_order([(text_key(t), t) for t in unique])]


def test_batches_cover_every_position_once_within_the_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 257, size=500).tolist()
    batches = budget_batches(lengths, 2048)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(500))
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 2048
    # Shortest first, and the same batches for the same lengths.
    assert [lengths[i] for i in flat] == sorted(lengths)
    again = budget_batches(lengths, 2048)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


def test_a_text_over_the_budget_is_a_batch_of_its_own_and_ties_keep_their_order():
    batches = budget_batches([5, 300, 5, 5], 100)
    assert [b.tolist() for b in batches] == [[0, 2, 3], [1]]
    assert budget_batches([], 100) == []
    with pytest.raises(ValueError):
        budget_batches([1], 0)


def test_pad_right_and_left():
    assert pad([[1, 2, 3], [4]], 0).tolist() == [[1, 2, 3], [4, 0, 0]]
    assert pad([[1, 2, 3], [4]], 9, left=True).tolist() == [[1, 2, 3], [9, 9, 4]]


def test_encode_equals_sentence_transformers_encode(teacher, texts):
    from sentence_transformers import SentenceTransformer

    ours = teacher.encode(texts)
    theirs = SentenceTransformer(default_teacher(), device="cpu").encode(
        texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True
    )
    assert ours.dtype == np.float32 and ours.shape == (len(texts), teacher.dim)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6)


def test_vectors_do_not_depend_on_the_token_budget(teacher, texts):
    small = Teacher(default_teacher(), token_budget=300)  # mostly 1-2 long texts a batch
    a, b = small.encode(texts), teacher.encode(texts)
    assert len(budget_batches([len(r["input_ids"]) for r in small.tokenize(texts)[0]], 300)) > 10
    cosine = np.sum(a * b, axis=1)
    assert cosine.min() > 1 - 1e-5


def test_the_default_budget_is_capped_on_cpu_only(teacher):
    assert default_token_budget(32, 256, "cpu") == CPU_TOKEN_BUDGET < 32 * 256
    assert default_token_budget(4, 256, "cpu") == 4 * 256  # a smaller batch stays smaller
    assert default_token_budget(32, 256, "cuda") == 32 * 256
    assert teacher.token_budget == CPU_TOKEN_BUDGET  # the real MiniLM on this CPU
    assert Teacher(default_teacher(), token_budget=8192).token_budget == 8192


def test_truncations_are_counted_from_the_same_tokenisation(teacher, texts):
    vectors, truncated = teacher.encode_counting(texts)
    expected = sum(n > teacher.max_tokens for n in teacher.count_tokens(texts))
    assert truncated == expected > 0
    assert np.array_equal(vectors, teacher.encode(texts))  # same texts, same order: same bits
    rows, _ = teacher.tokenize(texts)
    assert max(len(r["input_ids"]) for r in rows) == teacher.max_tokens


def test_empty_input(teacher):
    vectors, truncated = teacher.encode_counting([])
    assert vectors.shape == (0, teacher.dim) and truncated == 0


def test_bf16_teacher_gives_unit_rows_close_to_fp32(teacher, texts):
    bf16 = Teacher(default_teacher(), precision="bf16")
    a, b = bf16.encode(texts[:20]), teacher.encode(texts[:20])
    assert a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.sum(a * b, axis=1).min() > 0.98
