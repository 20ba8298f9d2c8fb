"""OpenAIBackend against a real OpenAI-compatible server: ``transformers serve`` on loopback,
offline, serving a tiny Qwen2 chat model built from real texts and loaded by path.

transformers serve (5.23) ignores ``response_format`` (it logs "Ignoring unsupported fields"),
so the backend runs with ``json_mode="none"``: nothing is enforced while decoding and the
generate pipeline parses and repairs. Its ``/v1/models`` lists only models in the hub cache
(never a local path), so readiness is checked on ``/health``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kalm_data.generate.backends.openai_server import OpenAIBackend
from kalm_data.generate.llm import LLMRequest, Sampling

from realdata import load_pairs

pytest.importorskip("openai", reason="needs the openai client (pip install openai)")
pytest.importorskip("fastapi", reason="needs transformers[serving] (fastapi, uvicorn)")
pytest.importorskip("uvicorn", reason="needs transformers[serving] (fastapi, uvicorn)")

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 180  # a bound on waiting, not an assertion: 2 shared cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def pairs() -> list[dict]:
    return load_pairs(300)


@pytest.fixture(scope="module")
def served_model(tmp_path_factory, pairs):
    """(model path, base_url) of a ``transformers serve`` subprocess, stopped afterwards."""
    from kalm_data.train.tiny import build_tiny_chat_qwen

    root = tmp_path_factory.mktemp("serve")
    texts = [t for p in pairs for t in (p["query"], p["positive"])]
    model = build_tiny_chat_qwen(root / "tiny-chat-qwen", texts)
    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(root / "hf-home"),  # an empty private cache: nothing from the hub
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [
        sys.executable,
        "-c",
        "import sys; from transformers.cli.transformers import main; sys.exit(main())",
        "serve",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
        "--log-level",
        "warning",
    ]
    log_path = root / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}/health", log_path)
        yield model, f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def wait_ready(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"transformers serve exited {proc.returncode}:\n{log_path.read_text()}")
        if ready(url):
            return
        time.sleep(0.5)
    pytest.fail(f"transformers serve not ready in {STARTUP_SECONDS}s:\n{log_path.read_text()}")


def test_backend_answers_through_transformers_serve(served_model, pairs):
    model, base_url = served_model
    backend = OpenAIBackend(model, base_url=base_url, json_mode="none", concurrency=2, timeout=300)
    schema = {"type": "object", "properties": {"user_query": {"type": "string"}}}
    requests = [
        LLMRequest(
            id=f"q{i}",
            system="Write one retrieval example as JSON.",
            user=f"Passage: {p['positive'][:300]}\nWrite a user_query for it.",
            json_schema=schema,
            sampling=Sampling(temperature=0.8, top_p=0.95, max_tokens=12, seed=i),
        )
        for i, p in enumerate(pairs[:3])
    ]
    responses = backend.generate(requests)

    assert backend.name == "tiny-chat-qwen" and not backend.constrains
    assert [r.id for r in responses] == ["q0", "q1", "q2"]
    for response in responses:
        assert response.error is None, response.error
        assert response.finish_reason in ("stop", "length")
        assert isinstance(response.text, str)
        assert response.prompt_tokens > 20  # the chat template and the passage were tokenised
        assert 0 < response.completion_tokens <= 12
    assert backend.retries == 0


def test_unknown_model_is_an_error_answer_not_a_crash(served_model):
    _, base_url = served_model
    backend = OpenAIBackend("no-such/model", base_url=base_url, json_mode="none", max_retries=0)
    [response] = backend.generate([LLMRequest(id="x", user="hello")])
    assert response.finish_reason == "error" and response.error.startswith("HTTP 4")
