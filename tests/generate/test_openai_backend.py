"""OpenAIBackend against the scripted loopback server (fake_openai): request shape, bounded
concurrency, our retries (429 + Retry-After, 5xx, timeouts), answers for what cannot be
retried, and an API key that reaches the server but nothing we print, log or pickle."""

from __future__ import annotations

import json
import logging
import pickle

import pytest
from fake_openai import FakeOpenAI, Fault, data_available, xquad_rows

from kalm_data.generate.backends import openai_server
from kalm_data.generate.backends.openai_server import OpenAIBackend
from kalm_data.generate.llm import LLMRequest, Sampling

pytest.importorskip("openai")

SECRET = "sk-kalm-test-5e3f9a71c2d84b06"
KEY_ENV = "KALM_TEST_OPENAI_KEY"
RETRIEVAL = {
    "type": "object",
    "properties": {
        "user_query": {"type": "string"},
        "positive_document": {"type": "string"},
        "hard_negative_document": {"type": "string"},
    },
    "required": ["user_query", "positive_document", "hard_negative_document"],
    "additionalProperties": False,
}


@pytest.fixture()
def server():
    if not data_available():
        pytest.skip("real data (xquad, stsb_multi_mt) not found")
    with FakeOpenAI() as srv:
        yield srv


def make(srv: FakeOpenAI, **options) -> OpenAIBackend:
    settings = {"base_url": srv.base_url, "backoff": 0.01, "timeout": 10.0, **options}
    return OpenAIBackend("fake-model", **settings)


def request(i: int, schema: dict | None = RETRIEVAL, tag: str = "") -> LLMRequest:
    user = f"Write retrieval example {i}{tag} as JSON with user_query and positive_document."
    sampling = Sampling(temperature=0.6, top_p=0.9, max_tokens=300, seed=i)
    return LLMRequest(id=f"r{i}", system="You write data.", user=user, json_schema=schema,
                      sampling=sampling)  # fmt: skip


def test_schema_and_sampling_are_sent_and_the_answer_is_real(server):
    backend = make(server)
    [response] = backend.generate([request(7)])

    body = server.bodies[0]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "kalm_data", "schema": RETRIEVAL, "strict": True},
    }
    assert body["messages"] == request(7).messages()
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        0.6,
        0.9,
        300,
        7,
    )
    assert backend.constrains and backend.name == "fake-model"
    assert response.id == "r7" and response.finish_reason == "stop" and response.error is None
    assert response.prompt_tokens > 0 and response.completion_tokens > 0
    example = json.loads(response.text)
    rows = {r["query"].strip(): r["positive"].strip() for r in xquad_rows()["en"]}
    assert rows[example["user_query"]] == example["positive_document"]
    assert example["hard_negative_document"] not in (example["positive_document"], "")


def test_json_mode_none_sends_no_response_format(server):
    backend = make(server, json_mode="none")
    [response] = backend.generate([request(1)])
    assert "response_format" not in server.bodies[0]
    assert not backend.constrains
    assert set(json.loads(response.text)) == {"user_query", "positive_document"}


def test_answers_are_deterministic_and_in_order(server):
    backend = make(server, concurrency=4)
    batch = [request(i) for i in range(6)]
    first = backend.generate(batch)
    again = backend.generate(batch)
    assert [r.id for r in first] == [f"r{i}" for i in range(6)]
    assert [r.text for r in first] == [r.text for r in again]
    assert len({r.text for r in first}) > 1
    assert set(server.calls.values()) == {2}  # each distinct body called once per batch


def test_concurrency_is_bounded(server):
    server.gate = 3  # each call waits until 3 are in flight at once
    backend = make(server, concurrency=3)
    responses = backend.generate([request(i) for i in range(9)])
    assert server.max_in_flight == 3
    assert [r.finish_reason for r in responses] == ["stop"] * 9
    assert server.total_calls == 9


def test_429_with_retry_after_is_retried_and_counted(server, caplog):
    server.script(Fault(status=429, retry_after=1))
    backend = make(server)
    with caplog.at_level(logging.WARNING, logger=openai_server.__name__):
        [response] = backend.generate([request(0)])
    assert response.finish_reason == "stop" and json.loads(response.text)
    assert backend.retries == 1 and server.total_calls == 2
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "HTTP 429; retry 1/5 in 1.00s" in record.getMessage()  # Retry-After, not backoff


def test_retry_after_is_capped(server, caplog, monkeypatch):
    monkeypatch.setattr(openai_server, "MAX_WAIT", 0.05)
    server.script(Fault(status=429, retry_after=3600))
    backend = make(server)
    with caplog.at_level(logging.WARNING, logger=openai_server.__name__):
        [response] = backend.generate([request(0)])
    assert response.finish_reason == "stop"
    assert "in 0.05s" in caplog.records[0].getMessage()


def test_5xx_until_retries_run_out_answers_error_and_spares_the_batch(server):
    server.script(Fault(status=500, match="example 2 ", times=3), Fault(status=503))
    backend = make(server, max_retries=2)
    responses = backend.generate([request(i) for i in range(4)])

    failed = responses[2]
    assert failed.finish_reason == "error" and failed.text == ""
    assert failed.error == "HTTP 500 after 2 retries"
    assert [r.finish_reason for i, r in enumerate(responses) if i != 2] == ["stop"] * 3
    assert server.calls_with("example 2 ") == 3  # 1 call + max_retries
    assert backend.retries == 3  # two for request 2, one for the 503


def test_timeout_is_retried(server):
    server.script(Fault(delay=5.0, match="example 0 "))
    backend = make(server, timeout=0.5)
    responses = backend.generate([request(0), request(1)])
    assert [r.finish_reason for r in responses] == ["stop", "stop"]
    assert backend.retries == 1 and server.calls_with("example 0 ") == 2


def test_timeout_every_time_answers_error(server):
    server.script(Fault(delay=5.0, times=2))
    backend = make(server, timeout=0.3, max_retries=1)
    [response] = backend.generate([request(0)])
    assert response.finish_reason == "error" and response.error == "timeout after 1 retries"


@pytest.mark.parametrize("kind", ["json", "html"])
def test_malformed_body_is_an_error_answer_not_retried(server, kind):
    server.script(Fault(malformed=kind, match="example 1 "))
    backend = make(server)
    responses = backend.generate([request(0), request(1)])
    assert responses[0].finish_reason == "stop"
    assert responses[1].finish_reason == "error"
    assert responses[1].error.startswith("malformed response")
    assert server.calls_with("example 1 ") == 1 and backend.retries == 0


def test_other_4xx_is_not_retried(server):
    server.script(Fault(status=400))
    backend = make(server)
    [response] = backend.generate([request(0)])
    assert response.finish_reason == "error" and response.error.startswith("HTTP 400")
    assert server.total_calls == 1 and backend.retries == 0


def test_length_refusal_and_connection_refused(server):
    server.script(Fault(finish_reason="length"), Fault(refusal="I can't help with that."))
    backend = make(server, concurrency=1)
    cut, refused = backend.generate([request(0), request(1)])
    assert cut.finish_reason == "length" and cut.text and cut.completion_tokens > 0
    assert refused.finish_reason == "error" and refused.error == "refusal: I can't help with that."

    gone = make(server, max_retries=1)
    gone.base_url = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    [response] = gone.generate([request(0)])
    assert response.error == "connection error after 1 retries"


def test_api_key_reaches_the_server_only(server, monkeypatch, caplog):
    backend = make(server, api_key_env=KEY_ENV, max_retries=1)
    monkeypatch.setenv(KEY_ENV, SECRET)  # set after construction: read at setup()
    server.script(Fault(status=500, match="example 1 ", times=2))
    with caplog.at_level(logging.DEBUG):
        responses = backend.generate([request(0), request(1)])

    assert [r.finish_reason for r in responses] == ["stop", "error"]
    assert set(server.authorizations) == {f"Bearer {SECRET}"}
    assert caplog.records  # the retries and the failure were logged ...
    assert not [r for r in caplog.records if SECRET in r.getMessage()]  # ... without the key
    assert SECRET not in caplog.text
    assert SECRET not in repr(backend) and SECRET not in backend.name
    assert not [k for k, v in vars(backend).items() if SECRET in repr(v) or SECRET in str(v)]
    blob = pickle.dumps(backend)
    assert SECRET.encode() not in blob

    again = pickle.loads(blob)
    monkeypatch.setenv(KEY_ENV, SECRET + "-rotated")
    again.generate([request(2)])
    assert server.authorizations[-1] == f"Bearer {SECRET}-rotated"


def test_no_key_sends_a_placeholder(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    backend = make(server, api_key_env=KEY_ENV)
    [response] = backend.generate([request(0)])
    assert response.finish_reason == "stop"
    assert server.authorizations == ["Bearer EMPTY"]


def test_models_endpoint_and_name(server):
    from openai import OpenAI

    client = OpenAI(api_key="EMPTY", base_url=server.base_url, max_retries=0)
    assert [m.id for m in client.models.list()] == ["fake-model"]
    assert OpenAIBackend("/srv/models/Qwen2-7B", base_url=server.base_url).name == "Qwen2-7B"
    assert make(server).generate([]) == []


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="json_mode"):
        OpenAIBackend("m", base_url="http://127.0.0.1:1/v1", json_mode="grammar")
