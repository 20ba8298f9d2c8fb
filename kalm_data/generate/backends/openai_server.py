"""Any OpenAI-compatible server (vLLM, TGI, transformers serve, a hosted API) as a ``Backend``.

Contract (see ``kalm_data.generate.llm``):
- ``OpenAIBackend(model, base_url=...)`` stores settings only; ``setup()`` reads the API key
  from the environment variable named by ``api_key_env`` (``"EMPTY"`` when unset: local
  servers need none) and opens the ``openai`` client. The key lives only inside that client,
  which is never pickled, logged or shown: ``repr``, ``name``, logs and a pickled backend hold
  no secret.
- ``name`` is the model id (an absolute server-side path is reduced to its last component).
- ``json_mode="json_schema"``: a request's schema is sent as ``response_format`` (strict
  json_schema) and ``constrains`` is True; ``"none"``: no ``response_format``, ``constrains`` is
  False (answers are parsed and repaired downstream). Use ``"none"`` for servers that ignore
  ``response_format`` (``transformers serve`` does).
- ``generate(requests)`` sends one chat.completions call per request from a pool of
  ``concurrency`` threads, with temperature, top_p, max_tokens and seed; answers keep order.
- Retries are ours (the client's are off): 429, 408, 5xx, timeouts and connection errors are
  retried up to ``max_retries`` times, waiting ``backoff * 2**n`` seconds plus jitter, or the
  server's ``Retry-After`` when given (both capped at ``MAX_WAIT``). Each retry logs one
  WARNING and adds one to ``retries``. Other 4xx, malformed bodies and refusals are not
  retried. A request that fails for good is answered ``finish_reason="error"`` with a short
  reason (``"HTTP 500 after 5 retries"``): the batch never raises for one request.
- ``finish_reason`` "length" stays "length"; any other completed answer is "stop". Token counts
  come from ``usage`` (0 when the server omits it).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kalm_data.generate.llm import LLMRequest, LLMResponse, OnAnswer, model_name

log = logging.getLogger(__name__)

#: Longest wait before one retry, in seconds, whatever Retry-After or the backoff says.
MAX_WAIT = 60.0
#: What a server that needs no key gets as the bearer token.
NO_KEY = "EMPTY"
JSON_MODES = ("json_schema", "none")
_RETRY_STATUS = {408, 429}


class _Retryable(Exception):
    """A failure worth another try; ``wait`` is the server's Retry-After, if any."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class _Final(Exception):
    """A failure no retry will fix (bad request, malformed answer, refusal)."""


class OpenAIBackend:
    """A model behind an OpenAI-compatible HTTP API (see module docstring)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 120.0,
        backoff: float = 1.0,
        json_mode: str = "json_schema",
    ) -> None:
        if json_mode not in JSON_MODES:
            raise ValueError(f"json_mode must be one of {JSON_MODES}, not {json_mode!r}")
        if concurrency < 1 or max_retries < 0:
            raise ValueError("concurrency must be >= 1 and max_retries >= 0")
        self.model = model
        self.name = model_name(model)
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff = backoff
        self.json_mode = json_mode
        # Per instance, not a ClassVar: the same class constrains or not by json_mode.
        self.constrains = json_mode == "json_schema"
        self.retries = 0
        self._lock = threading.Lock()
        self._client: Any = None

    def __repr__(self) -> str:
        return (
            f"OpenAIBackend(model={self.name!r}, base_url={public_url(self.base_url)!r}, "
            f"json_mode={self.json_mode!r}, concurrency={self.concurrency})"
        )

    def __getstate__(self) -> dict[str, Any]:
        # The client holds the key and a connection pool: never pickled, rebuilt by setup().
        state = self.__dict__.copy()
        state["_client"] = None
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def setup(self) -> None:
        """Open the client once (idempotent); the key is read from the environment here."""
        if self._client is not None:
            return
        from openai import OpenAI

        self._client = OpenAI(
            api_key=os.environ.get(self.api_key_env) or NO_KEY,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=0,
        )

    def generate(
        self, requests: list[LLMRequest], on_answer: OnAnswer | None = None
    ) -> list[LLMResponse]:
        """One response per request, in order; failures answered, never raised. ``on_answer``
        is called with each response as soon as it arrives (the cache stores it at once)."""
        if not requests:
            return []
        self.setup()

        def answer(request: LLMRequest) -> LLMResponse:
            response = self._answer(request)
            if on_answer is not None:
                on_answer(response)
            return response

        workers = min(self.concurrency, len(requests))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai") as pool:
            return list(pool.map(answer, requests))

    def _answer(self, request: LLMRequest) -> LLMResponse:
        """Call until an answer, a final failure, or the retries run out."""
        attempt = 0
        while True:
            try:
                return self._call(request)
            except _Final as exc:
                log.warning("request %s failed: %s", request.id, exc)
                return _error(request, str(exc))
            except _Retryable as exc:
                if attempt >= self.max_retries:
                    reason = f"{exc.reason} after {self.max_retries} retries"
                    log.warning("request %s failed: %s", request.id, reason)
                    return _error(request, reason)
                attempt += 1
                wait = self._wait(attempt, exc.wait)
                with self._lock:
                    self.retries += 1
                log.warning(
                    "request %s: %s; retry %d/%d in %.2fs",
                    request.id,
                    exc.reason,
                    attempt,
                    self.max_retries,
                    wait,
                )
                time.sleep(wait)

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        """The server's Retry-After if given, else exponential backoff with jitter; capped."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_WAIT)
        base = self.backoff * 2 ** (attempt - 1)
        return min(base * (1.0 + random.random()), MAX_WAIT)

    def _call(self, request: LLMRequest) -> LLMResponse:
        """One HTTP call; raises ``_Retryable`` or ``_Final`` for what went wrong."""
        import openai

        try:
            completion = self._client.chat.completions.create(**self._body(request))
        except openai.APIStatusError as exc:
            raise _status_failure(exc) from None
        except openai.APITimeoutError:
            raise _Retryable("timeout") from None
        except openai.APIConnectionError:
            raise _Retryable("connection error") from None
        except (openai.APIResponseValidationError, ValueError) as exc:
            # ValueError: a JSON body that does not parse (json.JSONDecodeError).
            raise _Final(f"malformed response: {type(exc).__name__}") from None
        except Exception as exc:  # noqa: BLE001 - one request never fails the batch
            log.exception("request %s: unexpected failure", request.id)
            raise _Final(f"unexpected {type(exc).__name__}") from None
        return _to_response(request, completion)

    def _body(self, request: LLMRequest) -> dict[str, Any]:
        sampling = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages(),
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": sampling.seed,
        }
        if self.constrains and request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "kalm_data", "schema": request.json_schema, "strict": True},
            }
        return body


def _to_response(request: LLMRequest, completion: Any) -> LLMResponse:
    """A ``ChatCompletion`` as our ``LLMResponse``; raises ``_Final`` when it is not one."""
    from openai.types.chat import ChatCompletion

    if not isinstance(completion, ChatCompletion) or not completion.choices:
        raise _Final("malformed response: no choices")
    choice = completion.choices[0]
    message = choice.message
    content = getattr(message, "content", None)
    refusal = getattr(message, "refusal", None)
    if not content and refusal:
        raise _Final(f"refusal: {_short(refusal)}")
    if content is not None and not isinstance(content, str):
        raise _Final("malformed response: content is not text")
    usage = completion.usage
    return LLMResponse(
        id=request.id,
        text=content or "",
        finish_reason="length" if choice.finish_reason == "length" else "stop",
        prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
        completion_tokens=(usage.completion_tokens or 0) if usage else 0,
    )


def _status_failure(exc: Any) -> Exception:
    """An HTTP error status as ``_Retryable`` (429, 408, 5xx) or ``_Final`` (other 4xx)."""
    status = exc.status_code
    if status in _RETRY_STATUS or status >= 500:
        return _Retryable(f"HTTP {status}", _retry_after(exc.response.headers))
    return _Final(f"HTTP {status}: {_short(_error_message(exc))}")


def _retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds; an HTTP date is ignored)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) / scale
        except ValueError:
            continue
    return None


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        return json.dumps(body)[:200]
    return str(getattr(exc, "message", "") or type(exc).__name__)


def _error(request: LLMRequest, reason: str) -> LLMResponse:
    return LLMResponse(id=request.id, finish_reason="error", error=reason)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def public_url(url: str) -> str:
    """``url`` without a ``user:password@`` part, for logs, ``repr`` and manifests."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))
