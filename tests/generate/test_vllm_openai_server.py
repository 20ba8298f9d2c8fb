"""vLLM's own OpenAI-compatible server on loopback (CPU, the tiny chat Qwen2), driven through
``OpenAIBackend``: chat completions whose ``response_format`` is a JSON Schema come back as JSON
that follows it.

Run in the vLLM environment only (``.ci/vllm-tests``): ``python -m pytest -q -m vllm``.
The server is a child process (``python -m vllm.entrypoints.openai.api_server``) in its own
process group, on 127.0.0.1 and a free port, stopped in the fixture's teardown.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from pydantic import BaseModel, Field

from kalm_data.generate.llm import LLMRequest, Sampling

from realdata import load_pairs

pytest.importorskip("vllm")
pytest.importorskip("openai")
pytestmark = pytest.mark.vllm

STARTUP_SECONDS = 600  # the engine's spawned processes import torch and vLLM on a busy 2-core box
SERVED_NAME = "tiny-chat-qwen"


class Pair(BaseModel):
    user_query: str = Field(max_length=200)
    positive_document: str = Field(max_length=200)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, log_path) -> None:
    """Poll ``/v1/models`` until it answers; fail with the server's log if it dies or stalls."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"vLLM server exited {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/v1/models", timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(2)
    pytest.fail(f"vLLM server not ready in {STARTUP_SECONDS}s:\n{log_path.read_text()[-4000:]}")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (engine processes included), then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def server(tiny_chat_model, tmp_path_factory):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        tiny_chat_model,
        "--served-model-name",
        SERVED_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--gpu-memory-utilization",
        "0.1",  # on CPU: the share of RAM the KV cache takes
        "--max-model-len",
        "1024",
        "--enforce-eager",
        "--structured-outputs-config",
        '{"backend": "guidance"}',  # strict JSON strings, as VLLMBackend uses
    ]
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log_path)
        yield url
    finally:
        stop(process)


def request(i: int, query: str) -> LLMRequest:
    return LLMRequest(
        id=f"r{i}",
        system="Write a search query and a passage that answers it, as JSON.",
        user=query,
        json_schema=Pair.model_json_schema(),
        sampling=Sampling(max_tokens=512, seed=i),
    )


def test_chat_completions_follow_the_json_schema(server):
    from kalm_data.generate.backends.openai_server import OpenAIBackend

    backend = OpenAIBackend(
        SERVED_NAME, base_url=f"{server}/v1", api_key_env="KALM_TEST_NO_KEY", concurrency=4
    )
    assert backend.constrains
    requests = [request(i, row["query"]) for i, row in enumerate(load_pairs(6))]
    responses = backend.generate(requests)
    assert [r.id for r in responses] == [r.id for r in requests]
    for response in responses:
        assert response.finish_reason in ("stop", "length"), response.error
        assert response.prompt_tokens > 0
        assert response.completion_tokens > 0
    stopped = [r.text for r in responses if r.finish_reason == "stop"]
    assert len(stopped) >= len(requests) // 2, [r.finish_reason for r in responses]
    for text in stopped:
        pair = Pair.model_validate_json(text)
        assert pair == Pair.model_validate(json.loads(text))
