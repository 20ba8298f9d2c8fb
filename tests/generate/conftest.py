"""Fixtures of the generate tests.

- ``tiny_chat_model``: a tiny random ``Qwen2ForCausalLM`` with a ChatML template and a BPE
  tokenizer trained on real queries and passages (``kalm_data.train.tiny``), built once per
  session; every backend (vLLM, transformers, their servers) loads it by path, offline.
"""

from __future__ import annotations

import pytest

from realdata import load_pairs


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory) -> str:
    from kalm_data.train.tiny import build_tiny_chat_qwen

    texts = [t for row in load_pairs(300) for t in (row["query"], row["positive"])]
    return build_tiny_chat_qwen(tmp_path_factory.mktemp("tiny-chat-qwen"), texts)
