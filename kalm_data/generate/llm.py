"""The one interface every LLM backend implements, and the records that cross it.

Contract:
- ``LLMRequest``: a chat (system + user messages), the JSON Schema the answer must follow
  (``None``: free text), and the sampling settings (seed included). ``key()`` is a
  content address of everything that decides the answer, model included: the response
  cache (``kalm_data.generate.cache``) is keyed by it.
- ``LLMResponse``: the text, why generation stopped (``stop``, ``length``, or ``error``
  with ``error`` saying what failed after all retries), and token counts (0 when the backend
  does not report them). A backend never raises for one failed request: it answers it with
  ``finish_reason="error"`` so the request is rejected with its reason and the run goes on.
- ``Backend``: ``setup()`` once per worker (load the model, open the client), then
  ``generate(requests, on_answer)`` answers a batch, one response per request, in order, and
  calls ``on_answer(response)`` for each as soon as it is final (a backend that answers a
  batch at once calls it at the end), so a kill mid-batch loses no finished answer. ``name`` is the
  model as the manifest records it (no path, no secret). ``constrains`` says whether the
  backend enforces the JSON Schema while decoding (if not, answers are parsed and repaired).
- ``model_name(model)``: the model as outputs record it (a hub id as is; a local or absolute
  path by its folder name: no path reaches a manifest).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field


class Sampling(BaseModel):
    """Sampling settings of one request."""

    model_config = ConfigDict(frozen=True)

    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 1024
    seed: int = 0


class LLMRequest(BaseModel):
    """One chat request. ``id`` names it in the output (not part of the cache key)."""

    model_config = ConfigDict(frozen=True)

    id: str
    system: str | None = None
    user: str
    json_schema: dict[str, Any] | None = None
    sampling: Sampling = Field(default_factory=Sampling)

    def messages(self) -> list[dict[str, str]]:
        """OpenAI-style chat messages."""
        out = [{"role": "system", "content": self.system}] if self.system else []
        return [*out, {"role": "user", "content": self.user}]

    def key(self, model: str) -> str:
        """sha256 of model, messages, schema and sampling: equal keys, equal answers."""
        body = {
            "model": model,
            "messages": self.messages(),
            "json_schema": self.json_schema,
            "sampling": self.sampling.model_dump(),
        }
        text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


FinishReason = Literal["stop", "length", "error"]


class LLMResponse(BaseModel):
    """The answer to one ``LLMRequest`` (same ``id``)."""

    id: str
    text: str = ""
    finish_reason: FinishReason = "stop"
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False


#: Called with each final response (same ``id`` as its request).
OnAnswer = Callable[[LLMResponse], None]


class Backend(Protocol):
    """What the generate pipeline needs of an LLM (see module docstring)."""

    name: str
    constrains: bool

    def setup(self) -> None: ...

    def generate(
        self, requests: list[LLMRequest], on_answer: OnAnswer | None = None
    ) -> list[LLMResponse]: ...


def model_name(model: str) -> str:
    """See module docstring."""
    path = os.path.normpath(os.path.expanduser(model))
    return os.path.basename(path) if os.path.isabs(path) or os.path.exists(path) else model
