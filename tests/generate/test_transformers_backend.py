"""TransformersBackend with a tiny random chat Qwen2 trained on real texts, on CPU.

The random model writes noise, which is the point: what parses and validates does so because
xgrammar masked the logits, and the same noise without the mask is not JSON.
"""

from __future__ import annotations

import json
import os

import pytest
from pydantic import BaseModel, Field, ValidationError

from kalm_data.generate.llm import LLMRequest, Sampling

from realdata import load_pairs

torch = pytest.importorskip("torch")
pytest.importorskip("xgrammar")


class Pair(BaseModel):
    """The answer shape asked of the model (a small pydantic-derived schema)."""

    user_query: str = Field(max_length=40)
    positive_document: str = Field(max_length=120)


SCHEMA = Pair.model_json_schema()
SYSTEM = "Write a search query and a passage that answers it, as JSON."


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def backend(tiny_chat_model):
    from kalm_data.generate.backends.hf import TransformersBackend

    backend = TransformersBackend(tiny_chat_model, batch_size=4)
    backend.setup()
    return backend


@pytest.fixture(scope="module")
def free_backend(tiny_chat_model):
    from kalm_data.generate.backends.hf import TransformersBackend

    backend = TransformersBackend(tiny_chat_model, constrain="none")
    backend.setup()
    return backend


def requests(n: int, max_tokens: int = 256, schema: dict | None = SCHEMA, **sampling):
    """``n`` chats about real questions, seeds 0..n-1."""
    rows = load_pairs(n)
    return [
        LLMRequest(
            id=f"q{i}",
            system=SYSTEM,
            user=f"Topic: {row['query']}",
            json_schema=schema,
            sampling=Sampling(max_tokens=max_tokens, seed=i, **sampling),
        )
        for i, row in enumerate(rows)
    ]


def parses(text: str) -> bool:
    try:
        Pair.model_validate_json(text)
    except ValidationError:
        return False
    return True


def test_name_is_the_folder_and_constraint_is_declared(backend, free_backend, tiny_chat_model):
    assert backend.name == os.path.basename(tiny_chat_model) and "/" not in backend.name
    assert backend.constrains is True
    assert free_backend.constrains is False


def test_constrained_answers_validate_against_the_pydantic_model(backend):
    responses = backend.generate(requests(8))
    assert [r.id for r in responses] == [f"q{i}" for i in range(8)]
    # The bounds (40 + 120 characters) end every answer well inside 256 tokens.
    assert [r.finish_reason for r in responses] == ["stop"] * 8
    for response in responses:
        answer = Pair.model_validate_json(response.text)
        assert len(answer.user_query) <= 40 and len(answer.positive_document) <= 120
    assert len({r.text for r in responses}) == 8  # eight seeds, eight answers


def test_without_constraint_the_random_model_writes_no_json(free_backend):
    responses = free_backend.generate(requests(8, max_tokens=48))
    assert all(r.finish_reason in ("stop", "length") for r in responses)
    assert not any(parses(r.text) for r in responses)
    assert sum(r.completion_tokens for r in responses) > 8  # it did write something


def test_same_seed_same_text_alone_or_in_any_batch(backend):
    batch = requests(6, max_tokens=24)
    alone = backend.generate([batch[2]])[0]
    mixed = backend.generate([batch[5], batch[2], batch[0]])[1]
    full = backend.generate(batch)[2]
    free = [r.model_copy(update={"json_schema": None}) for r in (batch[1], batch[4])]
    beside_free = backend.generate([free[0], batch[2], free[1]])
    assert alone.text == mixed.text == full.text == beside_free[1].text
    assert alone.completion_tokens == mixed.completion_tokens == full.completion_tokens
    assert not any(r.text.startswith('{"user_query"') for r in (beside_free[0], beside_free[2]))
    reseeded = batch[2].model_copy(update={"sampling": Sampling(max_tokens=24, seed=99)})
    assert backend.generate([reseeded])[0].text != alone.text


def test_tiny_max_tokens_finishes_with_length(backend, free_backend):
    for b in (backend, free_backend):
        responses = b.generate(requests(3, max_tokens=3))
        assert [r.finish_reason for r in responses] == ["length"] * 3
        assert [r.completion_tokens for r in responses] == [3, 3, 3]


def test_token_counts_match_the_tokenizer_and_plain_greedy_generate(free_backend):
    """temperature=0 is greedy: the same tokens as ``model.generate`` unbatched."""
    tokenizer, model = free_backend._tokenizer, free_backend._model
    batch = requests(4, max_tokens=40, schema=None, temperature=0.0)
    responses = free_backend.generate(batch)
    for request, response in zip(batch, responses, strict=True):
        prompt = tokenizer.apply_chat_template(
            request.messages(), add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        assert response.prompt_tokens == len(prompt)
        with torch.inference_mode():
            out = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=40)
        new = out[0, len(prompt) :].tolist()
        eos = model.generation_config.eos_token_id
        n = new.index(eos) + 1 if eos in new else len(new)
        assert response.completion_tokens == n
        assert response.finish_reason == ("stop" if eos in new else "length")
        assert response.text == tokenizer.decode(new[:n], skip_special_tokens=True)


def test_constrained_prefix_and_counts_with_short_budget(backend):
    responses = backend.generate(requests(2, max_tokens=20))
    for response in responses:
        assert response.finish_reason == "length" and response.completion_tokens == 20
        assert response.text.startswith('{"user_query": "')


def test_a_bad_request_is_answered_with_an_error_and_the_rest_goes_on(backend):
    good = requests(2, max_tokens=200)
    bad = LLMRequest(id="bad", user="anything", json_schema={"type": "no-such-type"})
    responses = backend.generate([good[0], bad, good[1]])
    assert [r.id for r in responses] == ["q0", "bad", "q1"]
    assert responses[1].finish_reason == "error" and "no-such-type" in responses[1].error
    assert [responses[0].finish_reason, responses[2].finish_reason] == ["stop", "stop"]
    assert all(json.loads(r.text) for r in (responses[0], responses[2]))


def test_length_bounded_strings_take_no_raw_control_characters(backend):
    """xgrammar#800: its bounded-string class lets U+0000-U+001F through; ours does not."""
    import xgrammar as xgr

    from kalm_data.generate.backends.hf import json_schema_grammar

    grammar = json_schema_grammar(backend._compiler, SCHEMA)

    def accepts(text: str) -> bool:
        matcher = xgr.GrammarMatcher(grammar, terminate_without_stop_token=True)
        return matcher.accept_string(text) and matcher.is_completed()

    assert accepts('{"user_query": "a cold", "positive_document": "rest and fluids"}')
    assert not accepts('{"user_query": "a\x00cold", "positive_document": "rest"}')
    assert not accepts('{"user_query": "a\tcold", "positive_document": "rest"}')
    assert not accepts('{"user_query": "' + "x" * 41 + '", "positive_document": "rest"}')
