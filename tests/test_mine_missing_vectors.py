"""A vector that does not reach the mining stage is read from the embedding cache (the same
rows as when it arrives); when the cache lacks it too, the error names the task and the text."""

import pytest

from kalm_data.beam.mine import MineTaskFn, example_texts
from kalm_data.curate.config import CurateConfig
from kalm_data.dedup import merge_by_query
from kalm_data.embed.buckets import length_bucket
from kalm_data.embed.cache import EmbeddingCache
from kalm_data.mining.params import MiningParams
from kalm_data.records import InputPair, RejectedRecord
from kalm_data.text import text_key

from realdata import load_pairs

FINGERPRINT = "test-teacher"


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


def _mine(examples, vectors, cache_dir):
    cfg = CurateConfig(window_start=5, window_end=20, num_negatives=3, filter_k=10)
    fn = MineTaskFn(MiningParams.from_config(cfg).to_dict(), "minilm", None, cache_dir)
    fn.setup()
    out = list(fn.process(("t", {"examples": examples, "vectors": vectors}), []))
    kept = [row for o in out if isinstance(o, tuple) for row in o[1]]
    rejected = [o.source_row for o in out if isinstance(o, RejectedRecord)]
    return kept, rejected


def test_missing_vector_read_from_cache(teacher, tmp_path, caplog):
    examples = _examples(60)
    texts = sorted({t for e in examples for _, t in example_texts(e)})
    vectors = dict(zip(map(text_key, texts), teacher.encode(texts), strict=True))
    cache = EmbeddingCache(str(tmp_path), FINGERPRINT)
    by_bucket: dict[str, list[str]] = {}
    for t in texts:
        by_bucket.setdefault(length_bucket(t), []).append(text_key(t))
    for bucket, keys in by_bucket.items():
        cache.put(bucket, keys, [vectors[k] for k in keys])

    full = _mine(examples, list(vectors.items()), (str(tmp_path), FINGERPRINT))
    lost = {text_key(examples[0].positives[0]), text_key(examples[1].query)}
    partial = [(k, v) for k, v in vectors.items() if k not in lost]
    with caplog.at_level("WARNING"):
        recovered = _mine(examples, partial, (str(tmp_path), FINGERPRINT))
    assert recovered == full
    assert len(full[0]) + len(full[1]) == len(examples)
    assert "2 vectors missing" in caplog.text

    with pytest.raises(RuntimeError, match=r"mine t: 2 texts have no vector"):
        _mine(examples, partial, (str(tmp_path / "empty"), FINGERPRINT))
